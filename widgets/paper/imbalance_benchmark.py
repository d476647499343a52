"""Paper figures of the balancing benchmark (:class:`workbench.analyses.imbalance_benchmark.BalanceBenchmarkResult`).

Per dataset:

- the paired differences of fused test accuracy (``paired`` table, ``kind == "fused"``): one row
  per ``method - reference`` comparison, dot = mean difference over shared seeds, bar = its
  t-interval, the seeds won beside it; right of 0 means the method beats its reference;
- mean fused test accuracy per method with its t-interval over seeds (``summary`` table).

Example
-------
>>> [f.name for f in paper_figures(result)]  # doctest: +SKIP
['benchmark_paired_synthetic-imbalance', 'benchmark_accuracy_synthetic-imbalance']
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from widgets.paper import PaperFigure
from widgets.paper.style import COLUMN_WIDTH, GREY, SMALL_FONT_SIZE, new_figure, paper_style, text

DOT_COLOR = "#0072B2"


def _datasets(result) -> list[str]:
    return list(result.datasets) or list(dict.fromkeys(result.summary["dataset"]))


def fused_paired(result, dataset: str) -> pd.DataFrame:
    """The fused-accuracy rows of ``result.paired`` for ``dataset``, in table order."""
    p = result.paired
    if p.empty:
        return p
    return p[(p["dataset"] == dataset) & (p["kind"] == "fused")].reset_index(drop=True)


def paired_differences(result, dataset: str | None = None) -> PaperFigure:
    """Forest plot of the paired differences of fused accuracy on ``dataset`` (default: the first)."""
    dataset = _datasets(result)[0] if dataset is None else dataset
    part = fused_paired(result, dataset)
    if part.empty:
        raise ValueError(f"dataset: no paired differences for {dataset!r}")
    y = np.arange(len(part))[::-1].astype(float)
    d = part["diff_mean"].to_numpy(float)
    lo, hi = part["diff_mean_ci_lower"].to_numpy(float), part["diff_mean_ci_upper"].to_numpy(float)
    ok = np.isfinite(lo) & np.isfinite(hi)
    labels = [f"{text(m)} − {text(r)}" for m, r in zip(part["method"], part["reference"], strict=True)]
    level = float(result.level)
    with paper_style():
        fig, ax = new_figure(width=COLUMN_WIDTH, height=0.8 + 0.26 * len(part))
        ax.errorbar(d[ok], y[ok], xerr=np.vstack([d[ok] - lo[ok], hi[ok] - d[ok]]), fmt="none", ecolor=DOT_COLOR,
                    elinewidth=1.4, gid="intervals")
        ax.plot(d, y, "o", color=DOT_COLOR, gid="differences")
        ax.axvline(0, color=GREY, linestyle=":", linewidth=0.8)
        ax.set_yticks(y, labels)
        ax.set_ylim(-0.6, len(part) - 0.4)
        for yi, w, n in zip(y, part["wins"], part["n_seeds"], strict=True):
            ax.annotate(f"{int(w)}/{int(n)}", (1.0, yi), xycoords=("axes fraction", "data"), xytext=(3, 0),
                        textcoords="offset points", va="center", fontsize=SMALL_FONT_SIZE - 1)
        ax.set_xlabel("paired difference of test accuracy")
        ax.set_title(text(dataset))
    n_seeds = int(part["n_seeds"].max())
    caption = (f"Balancing benchmark on {dataset}: paired difference of fused test accuracy (method minus "
               f"reference, in accuracy units) over up to {n_seeds} seeds that share split, initialisation and data. "
               f"Dot: mean difference; bar: {level:.0%} t-interval (n - 1 degrees of freedom; none with one seed); "
               "right of 0 (dotted) the method is better. Right margin: seeds won / seeds compared.")
    return PaperFigure(f"benchmark_paired_{dataset}", fig, caption)


def accuracy_by_method(result, dataset: str | None = None) -> PaperFigure:
    """Mean fused test accuracy per method on ``dataset`` with its t-interval over seeds."""
    dataset = _datasets(result)[0] if dataset is None else dataset
    s = result.summary
    part = s[(s["dataset"] == dataset) & (s["kind"] == "fused")].reset_index(drop=True)
    if part.empty:
        raise ValueError(f"dataset: no fused accuracy for {dataset!r}")
    y = np.arange(len(part))[::-1].astype(float)
    m = part["mean"].to_numpy(float)
    lo, hi = part["mean_ci_lower"].to_numpy(float), part["mean_ci_upper"].to_numpy(float)
    ok = np.isfinite(lo) & np.isfinite(hi)
    level = float(result.level)
    with paper_style():
        fig, ax = new_figure(width=COLUMN_WIDTH, height=0.8 + 0.24 * len(part))
        ax.errorbar(m[ok], y[ok], xerr=np.vstack([m[ok] - lo[ok], hi[ok] - m[ok]]), fmt="none", ecolor=DOT_COLOR,
                    elinewidth=1.4, gid="intervals")
        ax.plot(m, y, "o", color=DOT_COLOR, gid="means")
        ax.set_yticks(y, [text(v) for v in part["method"]])
        ax.set_ylim(-0.6, len(part) - 0.4)
        ax.set_xlabel("test accuracy (fused)")
        ax.set_title(text(dataset))
    caption = (f"Balancing benchmark on {dataset}: fused test accuracy per method (higher is better), mean over "
               f"{int(part['n_seeds'].max())} seeds with its {level:.0%} t-interval.")
    return PaperFigure(f"benchmark_accuracy_{dataset}", fig, caption)


def paper_figures(result) -> list[PaperFigure]:
    """Per dataset: the paired differences (when the benchmark has any) and the accuracy per method."""
    figs = []
    for dataset in _datasets(result):
        if not fused_paired(result, dataset).empty:
            figs.append(paired_differences(result, dataset))
        figs.append(accuracy_by_method(result, dataset))
    return figs
