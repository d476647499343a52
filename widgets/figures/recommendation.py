"""Figures of the recommendation analyses (:mod:`workbench.analyses.recommendation`).

- Metrics by model: Recall@K or NDCG@K per model, one panel per domain and setting, with the
  bootstrap interval over users as error bars.
- By group: the same metric per user group (gender, age band); disparities: the max-min gap and
  the worst group with their intervals.
- Modality Shapley: mean NDCG Shapley value per item modality, per domain and user group.
- Anchor-overlap curve: the sparse domain's Recall@20 with anchors on and off against the overlap
  ratio, bands over seeds, and the paired gain.
- Top-K list: a user's recommended items with their modalities, test hits marked.

:func:`report_figures` draws whichever result it is given (found by name via
:mod:`widgets.registry`, so run panels, dashboard tabs and reports show them).
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from widgets.figures.captions import add_caption
from widgets.figures.error_bars import interval_error_bars
from widgets.text import escaped_figure


def _caption(metric: str, k: int, level: float) -> str:
    return (
        f"{metric.upper()}@{k}: mean over test users of the per-user {metric} of the top {k} of a full ranking "
        f"(training/fold-in and validation items excluded); higher is better. Error bars: {level:.0%} "
        "percentile bootstrap interval over users. Inductive: users held out of training, folded in "
        "from their history without retraining."
    )


@escaped_figure
def recommendation_metrics_figure(result, metric: str = "recall", k: int = 20) -> go.Figure:
    """Bars of ``metric@k`` per model, a panel per (domain, setting)."""
    t = result.metrics[(result.metrics["metric"] == metric) & (result.metrics["k"] == k)]
    if t.empty:
        raise ValueError(f"recommendation result has no {metric}@{k}")
    panels = list(dict.fromkeys(zip(t["domain"], t["setting"], strict=True)))
    fig = make_subplots(
        rows=1,
        cols=len(panels),
        subplot_titles=[f"{d} · {s}" for d, s in panels],
        shared_yaxes=True,
    )
    for c, (d, s) in enumerate(panels, start=1):
        p = t[(t["domain"] == d) & (t["setting"] == s)]
        fig.add_trace(
            go.Bar(
                x=p["model"],
                y=p["value"],
                showlegend=False,
                error_y=interval_error_bars(p, "value"),
            ),
            row=1,
            col=c,
        )
    fig.update_layout(
        title=f"{metric.upper()}@{k} by model, domain and setting", yaxis_title=f"{metric}@{k}"
    )
    return add_caption(fig, [_caption(metric, k, float(t["level"].iloc[0]))])


@escaped_figure
def recommendation_group_figure(
    result, metric: str = "recall", k: int = 20, attribute: str | None = None
) -> go.Figure:
    """Grouped bars of ``metric@k`` per user group (one colour per model)."""
    t = result.by_group
    if t.empty:
        raise ValueError("recommendation result has no group breakdown (pass group_by=)")
    attribute = attribute or str(t["attribute"].iloc[0])
    t = t[(t["metric"] == metric) & (t["k"] == k) & (t["attribute"] == attribute)]
    fig = go.Figure()
    for model, p in t.groupby("model", sort=False):
        label = p["domain"] + " · " + p["setting"] + " · " + p["group"].astype(str)
        fig.add_trace(
            go.Bar(
                name=str(model),
                x=label,
                y=p["value"],
                error_y=interval_error_bars(p, "value"),
            )
        )
    fig.update_layout(
        barmode="group", title=f"{metric.upper()}@{k} by {attribute}", yaxis_title=f"{metric}@{k}"
    )
    return add_caption(
        fig, [_caption(metric, k, result.level) + f" Groups: the users' {attribute}."]
    )


@escaped_figure
def recommendation_disparity_figure(result, metric: str = "recall", k: int = 20) -> go.Figure:
    """The max-min gap between user groups of ``metric@k`` per model, domain, setting and attribute."""
    t = result.disparities
    if t.empty:
        raise ValueError("recommendation result has no disparities (pass group_by=)")
    t = t[(t["metric"] == metric) & (t["k"] == k) & (t["disparity"] == "max_min_gap")]
    fig = go.Figure()
    for attribute, p in t.groupby("attribute", sort=False):
        label = p["model"] + " · " + p["domain"] + " · " + p["setting"]
        fig.add_trace(
            go.Bar(
                name=str(attribute),
                x=label,
                y=p["value"],
                error_y=interval_error_bars(p, "value"),
                hovertext=[
                    f"p = {v:.3g}; worst group {w}"
                    for v, w in zip(p["p_value"], p["worst_group"], strict=True)
                ],
            )
        )
    fig.update_layout(
        barmode="group",
        title=f"Largest gap in {metric.upper()}@{k} between user groups",
        yaxis_title=f"max - min {metric}@{k}",
    )
    return add_caption(
        fig,
        [
            f"Max-min gap: the largest difference in mean per-user {metric}@{k} between two user groups (groups under "
            "the minimum size left out); lower is fairer. Error bars: simultaneous max-t bootstrap interval of the "
            f"signed pairwise differences at {result.level:.0%} (it reaches 0 when no pair differs); hover: "
            "permutation p-value of equal groups and the worst group."
        ],
    )


@escaped_figure
def ranking_shapley_figure(result, attribute: str | None = None) -> go.Figure:
    """Mean NDCG Shapley value per item modality, a panel per domain, one bar colour per group."""
    t = result.by_group
    attribute = attribute or ("all" if attribute is None else attribute)
    if attribute not in set(t["attribute"]):
        raise ValueError(
            f"attribute: {attribute!r} is not in the result ({sorted(set(t['attribute']))})"
        )
    t = t[t["attribute"] == attribute]
    domains = list(dict.fromkeys(t["domain"]))
    fig = make_subplots(
        rows=1,
        cols=len(domains),
        subplot_titles=[f"domain {d}" for d in domains],
        shared_yaxes=True,
    )
    for c, d in enumerate(domains, start=1):
        for g, p in t[t["domain"] == d].groupby("group", sort=True):
            fig.add_trace(
                go.Bar(
                    name=str(g),
                    x=p["modality"],
                    y=p["mean"],
                    legendgroup=str(g),
                    showlegend=c == 1,
                    error_y=interval_error_bars(p, "mean"),
                ),
                row=1,
                col=c,
            )
    fig.update_layout(
        barmode="group",
        title=f"Which item modality matters for NDCG@{result.k}"
        + ("" if attribute == "all" else f", by {attribute}"),
        yaxis_title=f"Shapley value (NDCG@{result.k})",
    )
    return add_caption(
        fig,
        [
            f"Shapley value of each item modality for a user's NDCG@{result.k}: the value of a set of modalities is the "
            f"user's NDCG@{result.k} with the others masked (projector input replaced by the feature mean, no "
            "retraining) minus that with all masked; a user's values sum to that gain. Higher: the modality helps "
            f"rank that user's test items. Error bars: {result.level:.0%} t-interval of the mean over the group's users."
        ],
    )


@escaped_figure
def anchor_overlap_figure(result) -> go.Figure:
    """Sparse-domain Recall@K with anchors on and off against the overlap ratio (bands over seeds), and the gain."""
    metric = f"recall@{result.k}"
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=[
            f"domain {result.domain}: {metric}",
            "relative gain of anchors (paired by seed)",
        ],
    )
    for anchors, p in result.curve.groupby("anchors", sort=True):
        p = p.sort_values("overlap")
        name = "anchors on" if anchors else "anchors off"
        color = "#d62728" if anchors else "#1f77b4"
        fig.add_trace(
            go.Scatter(
                x=np.r_[p["overlap"], p["overlap"][::-1]],
                y=np.r_[p[f"{metric}_ci_upper"], p[f"{metric}_ci_lower"][::-1]],
                fill="toself",
                line={"width": 0},
                fillcolor=color,
                opacity=0.2,
                showlegend=False,
                hoverinfo="skip",
                legendgroup=name,
            ),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=p["overlap"],
                y=p[metric],
                mode="lines+markers",
                name=name,
                legendgroup=name,
                line={"color": color},
            ),
            row=1,
            col=1,
        )
    g = result.gain.sort_values("overlap")
    fig.add_trace(
        go.Scatter(
            x=g["overlap"],
            y=100 * g["gain"],
            mode="lines+markers",
            name="gain",
            showlegend=False,
            line={"color": "#2ca02c"},
            error_y=interval_error_bars(g, "gain", scale=100.0),
        ),
        row=1,
        col=2,
    )
    fig.add_hline(y=0, line={"dash": "dot", "color": "grey"}, row=1, col=2)
    fig.update_xaxes(
        title_text="overlap ratio (share of the sparse domain's users also in the other)"
    )
    fig.update_yaxes(title_text=metric, row=1, col=1)
    fig.update_yaxes(title_text="gain (%)", row=1, col=2)
    fig.update_layout(title="Cross-domain anchors against the share of overlapping users")
    n = int(result.runs["seed"].nunique())
    return add_caption(
        fig,
        [
            f"Left: mean {metric} of the known test users of domain {result.domain} (full ranking, training and "
            f"validation items excluded) over {n} seeds, anchors on and off; bands: {result.level:.0%} t-interval over "
            "seeds. Right: relative gain on/off - 1 per seed, mean with its t-interval; higher is better, 0 = no gain."
        ],
    )


@escaped_figure
def top_k_figure(result, max_text: int = 60) -> go.Figure:
    """A table of a user's top-K items: rank, item, score, test hit, the item's columns and modalities."""
    t = result.items
    cells = [
        t[c].map(lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)[:max_text])
        for c in t.columns
    ]
    fill = [["#d8f0d8" if h else "white" for h in t["hit"]]] * len(t.columns)
    fig = go.Figure(
        go.Table(
            header={"values": [str(c) for c in t.columns]},
            cells={"values": cells, "fill": {"color": fill}},
        )
    )
    fig.update_layout(
        title=f"Top {len(t)} for user {result.user} in domain {result.domain} ({result.model}); "
        f"Recall@{len(t)} = {result.recall:.3g}"
    )
    return add_caption(
        fig,
        [
            f"The {len(t)} best-scored items for user {result.user} in domain {result.domain}, training and validation "
            "items excluded; green rows are the user's test items (hits). modality_* columns: the three largest "
            "coordinates (#index value) of the item's feature vector for that modality; other columns come from the "
            "item table (for MovieLens: title, year, genres)."
        ],
    )


@escaped_figure
def ranking_fairness_figure(result) -> go.Figure:
    """Per-group mean of each ranking metric with its bootstrap interval (flagged groups hatched)."""
    t = result.by_group
    fig = go.Figure()
    for (metric, k), p in t.groupby(["metric", "k"], sort=False):
        fig.add_trace(
            go.Bar(
                name=f"{metric}@{k}",
                x=p["attribute"] + " = " + p["group"].astype(str),
                y=p["value"],
                error_y=interval_error_bars(p, "value"),
                marker_pattern_shape=["/" if f else "" for f in p["flag"]],
            )
        )
    fig.update_layout(
        barmode="group", title="Ranking metrics by user group", yaxis_title="mean per user"
    )
    return add_caption(
        fig,
        [
            "Mean per-user ranking metric in each user group; higher is better. Error bars: "
            f"{result.level:.0%} percentile bootstrap interval (users resampled within their group). "
            "Hatched: groups under the minimum size, left out of the disparities."
        ],
    )


def report_figures(result) -> list[go.Figure]:
    """The figures of any recommendation result (dispatch on its class name)."""
    kind = type(result).__name__
    if kind == "RankingShapleyResult":
        attrs = [a for a in dict.fromkeys(result.by_group["attribute"]) if a != "all"]
        return [ranking_shapley_figure(result)] + [ranking_shapley_figure(result, a) for a in attrs]
    if kind == "AnchorCurveResult":
        return [anchor_overlap_figure(result)]
    if kind == "TopKList":
        return [top_k_figure(result)]
    if kind == "RankingFairness":
        return [ranking_fairness_figure(result)]
    figs = [
        recommendation_metrics_figure(result, "recall", 20),
        recommendation_metrics_figure(result, "ndcg", 20),
    ]
    if not result.by_group.empty:
        figs.append(recommendation_group_figure(result, "recall", 20))
    if not result.disparities.empty:
        figs.append(recommendation_disparity_figure(result, "recall", 20))
    return figs
