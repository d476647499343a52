"""Paper figures of the retrieval analyses (:mod:`workbench.analyses.retrieval`).

- :class:`~workbench.analyses.retrieval.RetrievalResult`: the retrieval matrix as a seaborn heat
  map, one figure per Recall@k: rows are the queries (fused pairs ``a+b`` included), columns the
  galleries, each cell the value with its bootstrap interval.
- :class:`~workbench.analyses.retrieval.XorCurveResult`: 2->1 top-1 against ``p`` per method with
  the t-interval over seeds as a band, the Bayes oracle (dashed) and chance (dotted).

Captions are the interactive figures' (:func:`widgets.figures.retrieval.matrix_caption`,
:func:`widgets.figures.retrieval.xor_caption`).

Examples
--------
>>> import pandas as pd
>>> from workbench.analyses.retrieval import RetrievalResult
>>> t = pd.DataFrame({"query": ["a", "b"], "gallery": ["b", "a"], "kind": "1->1", "metric": "R@1",
...                   "value": [0.5, 0.25], "value_ci_lower": [0.3, 0.1], "value_ci_upper": [0.7, 0.4],
...                   "n": 100, "level": 0.95})
>>> [f.name for f in paper_figures(RetrievalResult(t))]
['retrieval_matrix_R@1']
"""

from __future__ import annotations

import numpy as np
import seaborn as sns

from widgets.figures.retrieval import matrix_caption, xor_caption
from widgets.paper import PaperFigure
from widgets.paper.style import (
    CMAP,
    COLUMN_WIDTH,
    GREY,
    SMALL_FONT_SIZE,
    color,
    new_figure,
    paper_style,
    text,
)


def matrix(result, metric: str) -> tuple[list[str], list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Queries, galleries and the ``(query x gallery)`` value / lower / upper arrays of ``metric``
    (NaN where a direction was not evaluated, e.g. a modality against itself)."""
    t = result.table[result.table["metric"] == metric]
    if t.empty:
        raise ValueError(f"metric: retrieval result has no {metric!r}; it has {sorted(result.table['metric'].unique())}")
    queries, galleries = list(dict.fromkeys(t["query"])), list(dict.fromkeys(t["gallery"]))
    # columns in the queries' modality order, so the 1->1 block has its (empty) diagonal in place
    galleries = [q for q in queries if q in galleries] + [g for g in galleries if g not in queries]
    out = [t.pivot(index="query", columns="gallery", values=col).reindex(index=queries, columns=galleries)
           .to_numpy(float) for col in ("value", "value_ci_lower", "value_ci_upper")]
    return queries, galleries, *out


def retrieval_matrix(result, metric: str = "R@10") -> PaperFigure:
    """Heat map of ``metric`` per query (rows) and gallery (columns), cells annotated
    ``value [lower, upper]``; colour scale fixed to [0, 1] so figures at different k compare."""
    queries, galleries, value, lo, hi = matrix(result, metric)
    t = result.table[result.table["metric"] == metric]
    n, level = int(t["n"].iloc[0]), float(t["level"].iloc[0])
    annot = np.array([[f"{v:.2f}\n[{a:.2f}, {b:.2f}]" if np.isfinite(v) else "" for v, a, b in zip(rv, ra, rb, strict=True)]
                      for rv, ra, rb in zip(value, lo, hi, strict=True)], dtype=object)
    with paper_style():
        fig, ax = new_figure(width=COLUMN_WIDTH, height=0.9 + 0.42 * len(queries))
        sns.heatmap(value, ax=ax, vmin=0, vmax=1, cmap=CMAP, annot=annot, fmt="", linewidths=0.5,
                    annot_kws={"fontsize": SMALL_FONT_SIZE - 1}, cbar_kws={"label": text(metric), "shrink": 0.9},
                    xticklabels=[text(g) for g in galleries], yticklabels=[text(q) for q in queries])
        ax.set_xlabel("gallery modality")
        ax.set_ylabel("query (a+b: fused pair)")
        ax.tick_params(axis="y", rotation=0)
        ax.set_title(f"{text(metric)} per query → gallery (higher is better)")
    return PaperFigure(f"retrieval_matrix_{metric}", fig, f"Retrieval matrix, {metric} (higher is better). "
                       + matrix_caption(metric, n, level))


def xor_curve(result) -> PaperFigure:
    """Top-1 of the fused pair ``a+c -> b`` against ``p``, one line and band per method."""
    with paper_style():
        fig, ax = new_figure(height=2.4)
        for i, (method, part) in enumerate(result.curve.groupby("method", sort=False)):
            part = part.sort_values("p")
            c = color(i)
            lo, hi = part["top1_ci_lower"].to_numpy(float), part["top1_ci_upper"].to_numpy(float)
            if np.isfinite(lo).all() and np.isfinite(hi).all():
                ax.fill_between(part["p"], lo, hi, color=c, alpha=0.2, linewidth=0, gid=f"band:{method}")
            ax.plot(part["p"], part["top1"], marker="o", color=c, gid=f"line:{method}", label=text(method))
        grid = np.linspace(0, 1, 21)
        ax.plot(grid, grid + (1 - grid) / 2**result.d, color="black", linestyle="--", linewidth=0.9, gid="oracle",
                label="Bayes oracle")
        ax.axhline(1 / 2**result.d, color=GREY, linestyle=":", linewidth=0.8, gid="chance")
        ax.set_xlabel("p (share of samples with c = a xor b)")
        ax.set_ylabel("2→1 top-1 accuracy")
        ax.set_ylim(0, 1.05)
        ax.legend(loc="upper left")
    return PaperFigure(f"xor_curve_d{result.d}", fig, "XOR retrieval: top-1 accuracy (higher is better) of "
                       "retrieving b from the fused pair a+c against p. " + xor_caption(result))


def paper_figures(result) -> list[PaperFigure]:
    """The retrieval matrix at every k the result holds (an XOR curve result: its curve)."""
    if hasattr(result, "curve"):
        return [xor_curve(result)]
    ks = [m for m in dict.fromkeys(result.table["metric"]) if str(m).startswith("R@")]
    return [retrieval_matrix(result, k) for k in ks]
