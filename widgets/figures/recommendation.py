"""Figures of the recommendation analysis (:mod:`workbench.analyses.recommendation`).

- Metrics by model: Recall@K or NDCG@K per model, one panel per domain and setting, with the
  bootstrap interval over users as error bars.
- By group: the same metric per user group (gender, age band).
"""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from widgets.figures.captions import add_caption
from widgets.text import escaped_figure


def _caption(metric: str, k: int, level: float) -> str:
    return (f"{metric.upper()}@{k}: mean over test users of the per-user {metric} of the top {k} of a full ranking "
            f"(training/fold-in and validation items excluded); higher is better. Error bars: {level:.0%} "
            "percentile bootstrap interval over users. Inductive: users held out of training, folded in "
            "from their history without retraining.")


@escaped_figure
def recommendation_metrics_figure(result, metric: str = "recall", k: int = 20) -> go.Figure:
    """Bars of ``metric@k`` per model, a panel per (domain, setting)."""
    t = result.metrics[(result.metrics["metric"] == metric) & (result.metrics["k"] == k)]
    if t.empty:
        raise ValueError(f"recommendation result has no {metric}@{k}")
    panels = list(dict.fromkeys(zip(t["domain"], t["setting"], strict=True)))
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[f"{d} · {s}" for d, s in panels], shared_yaxes=True)
    for c, (d, s) in enumerate(panels, start=1):
        p = t[(t["domain"] == d) & (t["setting"] == s)]
        fig.add_trace(go.Bar(x=p["model"], y=p["value"], showlegend=False,
                             error_y={"type": "data", "symmetric": False,
                                      "array": p["value_ci_upper"] - p["value"],
                                      "arrayminus": p["value"] - p["value_ci_lower"]}), row=1, col=c)
    fig.update_layout(title=f"{metric.upper()}@{k} by model, domain and setting", yaxis_title=f"{metric}@{k}")
    return add_caption(fig, [_caption(metric, k, float(t["level"].iloc[0]))])


@escaped_figure
def recommendation_group_figure(result, metric: str = "recall", k: int = 20, attribute: str | None = None) -> go.Figure:
    """Grouped bars of ``metric@k`` per user group (one colour per model)."""
    t = result.by_group
    if t.empty:
        raise ValueError("recommendation result has no group breakdown (pass group_by=)")
    attribute = attribute or str(t["attribute"].iloc[0])
    t = t[(t["metric"] == metric) & (t["k"] == k) & (t["attribute"] == attribute)]
    fig = go.Figure()
    for model, p in t.groupby("model", sort=False):
        label = p["domain"] + " · " + p["setting"] + " · " + p["group"].astype(str)
        fig.add_trace(go.Bar(name=str(model), x=label, y=p["value"],
                             error_y={"type": "data", "symmetric": False,
                                      "array": p["value_ci_upper"] - p["value"],
                                      "arrayminus": p["value"] - p["value_ci_lower"]}))
    fig.update_layout(barmode="group", title=f"{metric.upper()}@{k} by {attribute}", yaxis_title=f"{metric}@{k}")
    return add_caption(fig, [_caption(metric, k, result.level) + f" Groups: the users' {attribute}."])


def report_figures(result) -> list[go.Figure]:
    """Recall@20 and NDCG@20 by model, and Recall@20 by user group when the result has groups."""
    figs = [recommendation_metrics_figure(result, "recall", 20), recommendation_metrics_figure(result, "ndcg", 20)]
    if not result.by_group.empty:
        figs.append(recommendation_group_figure(result, "recall", 20))
    return figs
