"""Figures of a run comparison (:class:`workbench.analyses.compare.Comparison`), at the comparison's
``level`` (95% by default):

- :func:`configurations_figure`: the mean of a metric per configuration with its t-interval, the
  individual seeds as dots;
- :func:`paired_figure`: the paired differences B − A on the seeds two configurations share, with
  their t-intervals.

Each has its own axis, with configuration names wrapped onto several lines (:func:`wrap_label`), so
long names never overlap the plot or each other. Both are escaped builders: every name from a run
is escaped for plotly, line by line (:func:`widgets.text.escape_figure` keeps the ``<br>`` between
the lines of a tick label).
"""

from __future__ import annotations

import textwrap

import plotly.graph_objects as go
from plotly.colors import qualitative

from widgets.figures.error_bars import interval_error_bars
from widgets.text import add_caption, escaped_figure

LABEL_WIDTH = 34  # characters per line of a configuration name on an axis
_PALETTE = qualitative.Plotly


def wrap_label(text: str, width: int = LABEL_WIDTH) -> str:
    """``text`` wrapped onto lines of at most ``width`` characters, joined by ``<br>`` (plotly's line
    break), breaking after the commas between ``name=value`` pairs where it can. Not escaped: the
    figure builders escape each line (:func:`widgets.text.escape_figure`).

    Examples
    --------
    >>> wrap_label("lr=0.01, optimizer=sgd, strategy=ogm_ge", 24)
    'lr=0.01, optimizer=sgd,<br>strategy=ogm_ge'
    """
    lines = textwrap.wrap(str(text), width, break_long_words=True, break_on_hyphens=False) or [""]
    return "<br>".join(lines)


def _check_metric(comparison, metric: str) -> None:
    if metric not in set(comparison.summary["metric"]):
        raise ValueError(f"metric {metric!r} not in the comparison; available: {comparison.metrics()}")


def _ticks(fig: go.Figure, labels: list[str]) -> None:
    """Row labels (wrapped names) on the y-axis, first on top; the height grows with their lines."""
    n_lines = max((label.count("<br>") + 1 for label in labels), default=1)
    fig.update_yaxes(tickmode="array", tickvals=list(range(len(labels))), ticktext=labels, automargin=True,
                     autorange="reversed", range=None)
    fig.update_layout(height=max(300, (22 * n_lines + 30) * max(1, len(labels)) + 160))


def _direction(metric: str) -> str:
    if "loss" in metric:
        return "Lower is better."
    if "acc" in metric or "ndcg" in metric or "recall" in metric:
        return "Higher is better."
    return "Which way is better depends on the metric."


@escaped_figure
def configurations_figure(comparison, *, metric: str = "acc_fused") -> go.Figure:
    """Mean of ``metric`` per configuration with its t-interval (diamonds and bars) and each seed (dots).

    Examples
    --------
    >>> fig = configurations_figure(cmp, metric="final_train_loss")   # doctest: +SKIP
    """
    _check_metric(comparison, metric)
    summary = comparison.summary[comparison.summary["metric"] == metric]
    runs = comparison.runs[comparison.runs["metric"] == metric]
    names = list(dict.fromkeys(summary["config"]))
    row = {name: i for i, name in enumerate(names)}
    level = f"{comparison.level:.0%}"
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=summary["mean"], y=summary["config"].map(row), mode="markers", name=f"mean, {level} CI",
        marker={"size": 11, "symbol": "diamond", "color": _PALETTE[0]},
        error_x=interval_error_bars(summary, "mean", fill=0.0), customdata=summary[["n", "sd"]],
        hovertemplate="mean %{x:.4f}<br>n %{customdata[0]}, sd %{customdata[1]:.4f}<extra></extra>"))
    fig.add_trace(go.Scatter(
        x=runs["value"], y=runs["config"].map(row), mode="markers", name="one seed",
        marker={"size": 7, "opacity": 0.55, "color": _PALETTE[1]}, text=runs["seed"].astype(str),
        hovertemplate="seed %{text}: %{x:.4f}<extra></extra>"))
    fig.update_layout(title=f"{metric}: mean over seeds per configuration",
                      xaxis_title=metric, legend={"orientation": "h", "y": -0.2})
    _ticks(fig, [wrap_label(n) for n in names])
    add_caption(fig, f"{metric} of each configuration: diamond and bar, the mean over its seeds with the {level} "
                     "Student-t interval (none with one seed); dots, the individual seeds. Configurations are "
                     f"named by the settings that differ between the chosen runs. {_direction(metric)}")
    return fig


@escaped_figure
def paired_figure(comparison, *, metric: str = "acc_fused") -> go.Figure:
    """Paired differences B − A of ``metric`` on the seeds two configurations share, with their t-interval.

    Each row is named ``B`` over ``− A`` on separate, wrapped lines, so long names stay readable.

    Examples
    --------
    >>> fig = paired_figure(cmp, metric="acc_fused")   # doctest: +SKIP
    """
    _check_metric(comparison, metric)
    paired = comparison.paired[comparison.paired["metric"] == metric]
    level = f"{comparison.level:.0%}"
    labels = [f"{wrap_label(b)}<br>− {wrap_label(a)}"
              for a, b in zip(paired["config_a"], paired["config_b"], strict=True)]
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=paired["mean_diff"], y=list(range(len(paired))), mode="markers",
        name=f"mean paired difference, {level} CI", marker={"size": 11, "color": _PALETTE[2]},
        error_x=interval_error_bars(paired, "mean_diff", fill=0.0), customdata=paired[["n", "seeds", "p_value"]],
        hovertemplate="%{x:+.4f}<br>n %{customdata[0]} (seeds %{customdata[1]}), p %{customdata[2]:.3g}"
                      "<extra></extra>"))
    fig.add_vline(x=0, line_dash="dot", line_color="grey")
    fig.update_layout(title=f"Paired difference of {metric} (B − A)",
                      xaxis_title=f"Δ {metric}", legend={"orientation": "h", "y": -0.2}, showlegend=True)
    _ticks(fig, labels)
    if paired.empty:
        fig.add_annotation(text="no two configurations of one dataset share a seed", x=0.5, y=0.5, xref="paper",
                           yref="paper", showarrow=False)
    add_caption(fig, f"Each row: configuration B (upper lines) minus configuration A (after −) in {metric}, on "
                     "the seeds both have (same split and initialisation, so split-to-split variance cancels); "
                     f"dot and bar: the mean paired difference B − A and its {level} Student-t interval. > 0: B "
                     f"scores higher. An interval that includes 0 (dotted line) shows no difference. "
                     f"{_direction(metric)}")
    return fig


def report_figures(comparison) -> list[go.Figure]:
    """Per metric (fused accuracy first): the configurations' means, then their paired differences."""
    metrics = sorted(comparison.metrics(), key=lambda m: (m != "acc_fused", m))
    return [fig for m in metrics for fig in (configurations_figure(comparison, metric=m),
                                             paired_figure(comparison, metric=m))]
