"""Figures of the per-target modality Shapley analysis (:mod:`workbench.analyses.target_shapley`).

- Mean Shapley value per modality, one bar group per target, with t-intervals.
- Each modality's share of the target's total value (stacked to 1 per target).

Found by name (``workbench.analyses.target_shapley`` -> this module), no registration line.

Example
-------
>>> import pandas as pd
>>> from workbench.analyses.target_shapley import TargetShapleyResult
>>> rows = [{"target": t, "modality": m, "mean": v, "mean_ci_lower": v - 0.1, "mean_ci_upper": v + 0.1,
...          "share": v / 1.0, "total": 1.0, "full_accuracy": 0.9, "chance": 0.2, "level": 0.95, "n_calib": 50}
...         for t, m, v in [("material", "sound", 0.9), ("material", "shape", 0.1)]]
>>> figs = report_figures(TargetShapleyResult(pd.DataFrame(rows), pd.DataFrame()))
>>> [t.name for t in figs[0].data], figs[1].layout.barmode
(['material'], 'stack')
"""

from __future__ import annotations

import plotly.graph_objects as go

from widgets.figures.captions import add_caption
from widgets.figures.error_bars import interval_error_bars
from widgets.text import escaped_figure

__all__ = ["report_figures", "share_figure", "value_figure"]


@escaped_figure
def value_figure(result) -> go.Figure:
    """Mean Shapley value (nats) per modality (x), a bar per target, t-interval error bars."""
    t = result.modalities
    fig = go.Figure()
    for target, sub in t.groupby("target", sort=False):
        fig.add_trace(
            go.Bar(
                x=sub["modality"],
                y=sub["mean"],
                name=str(target),
                error_y=interval_error_bars(sub, "mean"),
                customdata=sub[["share", "total", "full_accuracy", "chance"]],
                hovertemplate="%{x}: %{y:.3f} nats (share %{customdata[0]:.2f} of %{customdata[1]:.3f}); "
                "all modalities: accuracy %{customdata[2]:.2f}, chance %{customdata[3]:.2f}<extra></extra>",
            )
        )
    fig.add_hline(y=0, line_dash="dot", line_color="grey")
    fig.update_layout(
        barmode="group",
        xaxis_title="modality",
        yaxis_title="mean Shapley value (log-loss reduction, nats)",
        title="Which modality matters for which target (higher: the modality carries more of it)",
    )
    level, n = float(t["level"].iloc[0]), int(t["n_calib"].max())
    return add_caption(
        fig,
        [
            f"Each bar: a modality's mean Shapley value for predicting the target (its share of the "
            f"log-loss reduction over the class prior that all modalities reach together; nats; "
            f"> 0 helps, larger is better), over {n} calibration objects; error bars: {level:.0%} "
            "t-intervals. A target's bars sum to its full coalition's value."
        ],
    )


@escaped_figure
def share_figure(result) -> go.Figure:
    """Each modality's share of its target's total value, stacked per target."""
    t = result.modalities
    fig = go.Figure()
    for modality, sub in t.groupby("modality", sort=False):
        fig.add_trace(go.Bar(x=sub["target"], y=sub["share"], name=str(modality)))
    fig.update_layout(
        barmode="stack",
        xaxis_title="target",
        yaxis_title="share of the total Shapley value",
        title="Share of each target's value carried by each modality",
    )
    return add_caption(
        fig,
        [
            "Mean Shapley value of each modality divided by the target's total (the values sum "
            "to the full coalition's value, so the shares sum to 1; a negative share is a "
            "modality that hurts). A point estimate: the intervals are in the value figure."
        ],
    )


def report_figures(result) -> list[go.Figure]:
    """The values with intervals, then the shares."""
    return [value_figure(result), share_figure(result)]
