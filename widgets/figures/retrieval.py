"""Figures of the retrieval analyses (:mod:`workbench.analyses.retrieval`).

- The retrieval matrix: Recall@k for every query -> gallery direction (rows: queries, fused pairs
  included; columns: galleries), one heat map per k, with the bootstrap interval in each cell.
- The embedding map: a 2-D PCA of the shared sphere, points coloured by modality (or label),
  partners joined by a thin line.
- Linear probes: accuracy per representation with Wilson intervals.
- The XOR curve: 2->1 top-1 against p per method with t-interval bands, the Bayes oracle and chance.

Found by name (``workbench.analyses.retrieval`` -> this module), no registration line.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from widgets.figures.captions import add_caption
from widgets.text import escaped_figure


@escaped_figure
def retrieval_matrix_figure(result, metric: str = "R@10") -> go.Figure:
    """Heat map of ``metric`` (a Recall@k) per query (rows) and gallery (columns); higher is better."""
    t = result.table[result.table["metric"] == metric]
    if t.empty:
        raise ValueError(f"retrieval result has no metric {metric!r}; it has {sorted(result.table['metric'].unique())}")
    queries = list(dict.fromkeys(t["query"]))
    galleries = list(dict.fromkeys(t["gallery"]))
    value = t.pivot(index="query", columns="gallery", values="value").reindex(index=queries, columns=galleries)
    lo = t.pivot(index="query", columns="gallery", values="value_ci_lower").reindex(index=queries, columns=galleries)
    hi = t.pivot(index="query", columns="gallery", values="value_ci_upper").reindex(index=queries, columns=galleries)
    level = float(t["level"].iloc[0])
    text = [[f"{v:.3f} [{a:.3f}, {b:.3f}]" if v == v else "" for v, a, b in zip(rv, ra, rb, strict=True)]
            for rv, ra, rb in zip(value.to_numpy(), lo.to_numpy(), hi.to_numpy(), strict=True)]
    n = int(t["n"].iloc[0])
    fig = go.Figure(go.Heatmap(z=value.to_numpy(), x=galleries, y=queries, zmin=0, zmax=1, colorscale="Viridis",
                               text=text, texttemplate="%{text}", colorbar={"title": metric}))
    fig.update_layout(
        title=f"Retrieval matrix: {metric} per query -> gallery (higher is better)",
        xaxis_title="gallery modality", yaxis_title="query (a+b: fused pair)", height=120 + 40 * len(queries),
    )
    return add_caption(fig, [matrix_caption(metric, n, level)])


def matrix_caption(metric: str, n: int, level: float) -> str:
    """The caption of the retrieval matrix (shared with the paper figure, :mod:`widgets.paper.retrieval`).

    Examples
    --------
    >>> matrix_caption("R@5", 200, 0.95)[:58]
    'Share of 200 queries whose partner is among the top 5 of t'
    """
    return (f"Share of {n} queries whose partner is among the top {metric[2:]} of the gallery; "
            f"chance is {metric[2:]}/{n}. Brackets: {level:.0%} bootstrap interval over queries.")



@escaped_figure
def embedding_map_figure(points: pd.DataFrame, *, color: str = "modality", max_links: int = 60) -> go.Figure:
    """The shared sphere in 2-D (PCA): one marker per item and modality; partners of the first
    ``max_links`` items joined."""
    if points.empty:
        raise ValueError("the result has no embedding map (computed by retrieval_analysis)")
    if color not in ("modality", "label"):
        raise ValueError(f"color must be 'modality' or 'label', got {color!r}")
    fig = go.Figure()
    linked = points[points["sample"].isin(points["sample"].drop_duplicates().iloc[:max_links])]
    xs, ys = [], []
    for _, part in linked.groupby("sample", sort=False):
        xs += [*part["x"], None]
        ys += [*part["y"], None]
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"width": 0.6, "color": "rgba(120,120,120,0.5)"},
                             name="partners (same item)", hoverinfo="skip"))
    for key, part in points.groupby(color, sort=False):
        fig.add_trace(go.Scatter(x=part["x"], y=part["y"], mode="markers", marker={"size": 6, "opacity": 0.75},
                                   name=f"{color} {key}", customdata=np.c_[part["sample"], part["modality"]],
                                   hovertemplate="item %{customdata[0]} (%{customdata[1]})<extra></extra>"))
    n = points["sample"].nunique()
    fig.update_layout(title="Embedding map: the shared sphere, first two principal axes",
                      xaxis_title="PC 1", yaxis_title="PC 2", height=520, legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"})
    return add_caption(fig, [f"{n} items, every modality projected by one PCA of all unit "
                                            "embeddings; lines join an item's embeddings across modalities "
                                            "(short lines: well aligned)."])


@escaped_figure
def probes_figure(probes: pd.DataFrame) -> go.Figure:
    """Linear-probe test accuracy per representation (Wilson interval); higher is better."""
    if probes.empty:
        raise ValueError("the result has no linear probes (the dataset has no labels with >= 2 classes)")
    part = probes.iloc[::-1]
    fig = go.Figure()
    for kind, sub in part.groupby("kind", sort=False):
        fig.add_trace(go.Scatter(
            x=sub["accuracy"], y=sub["representation"], mode="markers", name=kind, marker={"size": 9},
            error_x={"type": "data", "symmetric": False, "array": sub["accuracy_ci_upper"] - sub["accuracy"],
                     "arrayminus": sub["accuracy"] - sub["accuracy_ci_lower"]}))
    level = float(probes["level"].iloc[0])
    fig.update_layout(title="Linear probes: label accuracy from each embedding",
                      xaxis_title="test accuracy (higher is better)", xaxis_range=[0, 1.02],
                      height=160 + 26 * len(part), legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"})
    return add_caption(fig, [f"Logistic regression fitted on the training split's embeddings, "
                                            f"scored on {int(probes['n'].iloc[0])} items; bars: {level:.0%} "
                                            "Wilson interval. a||b: the two embeddings concatenated."])


@escaped_figure
def gains_figure(gains: pd.DataFrame) -> go.Figure:
    """Per 2->1 direction: Recall@k of the fused pair minus its better member alone, with the
    paired bootstrap interval (right of 0: fusing helps)."""
    part = gains.iloc[::-1]
    labels = [f"{q} -> {g} (vs {b})" for q, g, b in zip(part["query"], part["gallery"], part["best_single"],
                                                         strict=True)]
    fig = go.Figure(go.Scatter(
        x=part["gain"], y=labels, mode="markers", marker={"size": 9, "color": "#1f4e79"}, name="gain",
        error_x={"type": "data", "symmetric": False, "array": part["gain_ci_upper"] - part["gain"],
                 "arrayminus": part["gain"] - part["gain_ci_lower"]}))
    fig.add_vline(x=0, line_dash="dot", line_color="grey")
    metric, level = str(gains["metric"].iloc[0]), float(gains["level"].iloc[0])
    fig.update_layout(title=f"Fused pair against its best member: {metric} gain",
                      xaxis_title=f"{metric} of the fused pair minus the better single modality (right: fusing helps)",
                      height=180 + 30 * len(part))
    return add_caption(fig, [f"Same queries and gallery; {level:.0%} paired bootstrap interval over "
                                            f"{int(gains['n'].iloc[0])} queries, the better member re-chosen in "
                                            "each resample."])


@escaped_figure
def xor_curve_figure(result) -> go.Figure:
    """2->1 top-1 (``a+c -> b`` among all 2^d candidates) against p per method, with the oracle."""
    curve = result.curve
    fig = go.Figure()
    for method, part in curve.groupby("method", sort=False):
        part = part.sort_values("p")
        fig.add_trace(go.Scatter(
            x=part["p"], y=part["top1"], mode="lines+markers", name=method,
            error_y={"type": "data", "symmetric": False, "array": (part["top1_ci_upper"] - part["top1"]).fillna(0),
                     "arrayminus": (part["top1"] - part["top1_ci_lower"]).fillna(0)}))
    grid = np.linspace(0, 1, 21)
    fig.add_trace(go.Scatter(x=grid, y=grid + (1 - grid) / 2**result.d, mode="lines", name="Bayes oracle",
                             line={"dash": "dash", "color": "black"}))
    fig.add_hline(y=1 / 2**result.d, line_dash="dot", line_color="grey", annotation_text="chance 1/2^d")
    fig.update_layout(title=f"XOR retrieval (d = {result.d}): 2->1 top-1 against p",
                      xaxis_title="p (share of samples with c = a xor b)", yaxis_title="top-1 accuracy (higher is better)",
                      yaxis_range=[0, 1.05], legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"})
    return add_caption(fig, [xor_caption(result)])


def xor_caption(result) -> str:
    """The caption of the XOR curve (shared with the paper figure, :mod:`widgets.paper.retrieval`)."""
    n_seeds = int(result.curve["n_seeds"].max())
    return (f"Query the fused pair a+c, find b among all {2**result.d} bit vectors; "
            f"mean over {n_seeds} seeds with {result.level:.0%} t-intervals. "
            "Every pair of modalities is independent: pairwise CLIP stays at chance.")


def report_figures(result) -> list[go.Figure]:
    """The figures of a retrieval result: the retrieval matrix at every k, the embedding map and the
    probes when computed; of an XOR curve: the curve."""
    if hasattr(result, "curve"):
        return [xor_curve_figure(result)]
    ks = [m for m in dict.fromkeys(result.table["metric"]) if m.startswith("R@")]
    figures = [retrieval_matrix_figure(result, k) for k in ks]
    if not result.gains.empty:
        figures.append(gains_figure(result.gains))
    if not result.points.empty:
        figures.append(embedding_map_figure(result.points))
    if not result.probes.empty:
        figures.append(probes_figure(result.probes))
    return figures
