"""Figures of a run comparison (:class:`workbench.analyses.compare.Comparison`): mean +- CI per
configuration with the individual seeds, and paired differences with their CI (at the comparison's
``level``, 95% by default)."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from widgets.figures.error_bars import interval_error_bars
from widgets.text import add_caption, escaped_figure


@escaped_figure
def comparison_figure(comparison, metric: str = "acc_fused") -> go.Figure:
    """Left: mean +- CI of ``metric`` per configuration (dots: seeds). Right: paired differences.

    Examples
    --------
    >>> fig = comparison_figure(cmp, metric="acc_fused")   # doctest: +SKIP
    """
    if metric not in set(comparison.summary["metric"]):
        raise ValueError(f"metric {metric!r} not in the comparison; available: {comparison.metrics()}")
    summary = comparison.summary[comparison.summary["metric"] == metric]
    paired = comparison.paired[comparison.paired["metric"] == metric]
    runs = comparison.runs[comparison.runs["metric"] == metric]
    level = f"{comparison.level:.0%}"
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.25,
                        subplot_titles=(f"{metric}: mean and {level} CI over seeds",
                                        f"Paired difference (B - A), {level} CI"))
    fig.add_trace(go.Scatter(x=summary["mean"], y=summary["config"], mode="markers", name="mean",
                             marker={"size": 11, "symbol": "diamond"}, error_x=interval_error_bars(summary, "mean", fill=0.0),
                             customdata=summary[["n", "sd"]],
                             hovertemplate="%{y}<br>mean %{x:.4f}<br>n %{customdata[0]}, sd %{customdata[1]:.4f}"),
                  row=1, col=1)
    fig.add_trace(go.Scatter(x=runs["value"], y=runs["config"], mode="markers", name="seed",
                             marker={"size": 6, "opacity": 0.5}, text=runs["seed"].astype(str),
                             hovertemplate="%{y}<br>seed %{text}: %{x:.4f}"), row=1, col=1)
    labels = paired["config_b"] + " − " + paired["config_a"]
    fig.add_trace(go.Scatter(x=paired["mean_diff"], y=labels, mode="markers", name="paired difference",
                             marker={"size": 11}, error_x=interval_error_bars(paired, "mean_diff", fill=0.0),
                             customdata=paired[["n", "p_value"]],
                             hovertemplate="%{y}<br>%{x:+.4f} (n %{customdata[0]}, p %{customdata[1]:.3g})"),
                  row=1, col=2)
    fig.add_vline(x=0, line_dash="dot", line_color="grey", row=1, col=2)
    fig.update_layout(template="plotly_white", height=max(320, 60 * max(len(summary), len(paired)) + 140),
                      legend={"orientation": "h", "y": -0.15})
    good = "higher is better" if metric.startswith("acc") else "check the metric's direction"
    add_caption(fig, f"Left: {metric} of each configuration ({good}); diamond and bar: mean over seeds with its "
                     f"{level} t-interval, dots: the individual seeds. Right: paired difference B − A over the seeds "
                     f"both configurations share, with its {level} interval; > 0: B scores higher, an interval "
                     "that includes 0 (dotted line) means no difference is shown.")
    return fig


def report_figures(comparison) -> list[go.Figure]:
    """One comparison figure per accuracy metric (fused first)."""
    metrics = sorted(comparison.metrics(), key=lambda m: (m != "acc_fused", m))
    return [comparison_figure(comparison, m) for m in metrics]
