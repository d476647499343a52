"""Figures of a retrieval evaluation (:class:`workbench.analyses.retrieval.RetrievalResult`).

The retrieval matrix: Recall@k for every query -> gallery direction (rows: queries, fused pairs
included; columns: galleries), one heat map per k, with the bootstrap interval in the hover text.
Found by name (``workbench.analyses.retrieval`` -> this module), no registration line.
"""

from __future__ import annotations

import plotly.graph_objects as go

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
        annotations=[{"text": matrix_caption(metric, n, level),
                      "xref": "paper", "yref": "paper", "x": 0, "y": -0.25, "showarrow": False}])
    return fig


def matrix_caption(metric: str, n: int, level: float) -> str:
    """The caption of the retrieval matrix (shared with the paper figure, :mod:`widgets.paper.retrieval`).

    Examples
    --------
    >>> matrix_caption("R@5", 200, 0.95)[:58]
    'Share of 200 queries whose partner is among the top 5 of t'
    """
    return (f"Share of {n} queries whose partner is among the top {metric[2:]} of the gallery; "
            f"chance is {metric[2:]}/{n}. Brackets: {level:.0%} bootstrap interval over queries.")


def report_figures(result) -> list[go.Figure]:
    """The retrieval matrix at every k the result holds."""
    ks = [m for m in dict.fromkeys(result.table["metric"]) if m.startswith("R@")]
    return [retrieval_matrix_figure(result, k) for k in ks]
