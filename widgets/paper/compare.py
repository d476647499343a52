"""Paper figures of a run comparison (:class:`workbench.analyses.compare.Comparison`), e.g. of a sweep.

For one metric (fused test accuracy by default): the mean per configuration with its t-interval
over seeds and each seed as a small dot (``summary`` and ``runs`` tables), and the paired
differences ``B - A`` on shared seeds with their t-intervals (``paired`` table).

Example
-------
>>> [f.name for f in paper_figures(comparison)]  # doctest: +SKIP
['comparison_acc_fused', 'comparison_paired_acc_fused']
"""

from __future__ import annotations

import textwrap

import numpy as np

from widgets.paper import PaperFigure
from widgets.paper.style import COLUMN_WIDTH, GREY, new_figure, paper_style, text

DOT_COLOR = "#0072B2"
SEP = " | "  # configuration labels are "dataset | strategy | fusion | epochs ..." (compare._labels)


def short_labels(labels: list[str]) -> tuple[dict[str, str], str]:
    """Each configuration label without the parts every label shares (those are returned once,
    for the title), wrapped to fit one column.

    Examples
    --------
    >>> short_labels(["d | naive | concat | 1 ep", "d | ogm_ge | concat | 1 ep"])
    ({'d | naive | concat | 1 ep': 'naive', 'd | ogm_ge | concat | 1 ep': 'ogm_ge'}, 'd | concat | 1 ep')
    """
    parts = [str(label).split(SEP) for label in labels]
    width = {len(p) for p in parts}
    if len(width) != 1 or len(labels) < 2:
        return {label: textwrap.fill(str(label), 30) for label in labels}, ""
    shared = [i for i in range(width.pop()) if len({p[i] for p in parts}) == 1]
    short = {label: textwrap.fill(SEP.join(x for i, x in enumerate(p) if i not in shared) or str(label), 30)
             for label, p in zip(labels, parts, strict=True)}
    return short, SEP.join(parts[0][i] for i in shared)


def _interval_rows(ax, est: np.ndarray, lo: np.ndarray, hi: np.ndarray, y: np.ndarray, gid: str) -> None:
    ok = np.isfinite(lo) & np.isfinite(hi)
    ax.errorbar(est[ok], y[ok], xerr=np.vstack([est[ok] - lo[ok], hi[ok] - est[ok]]), fmt="none", ecolor=DOT_COLOR,
                elinewidth=1.6, gid=f"{gid}:intervals")
    ax.plot(est, y, "D", color=DOT_COLOR, markersize=4, gid=f"{gid}:estimates")


def configurations(comparison, metric: str = "acc_fused") -> PaperFigure:
    """Mean of ``metric`` per configuration (diamond, t-interval bar) and each seed's value (dots)."""
    if metric not in set(comparison.summary["metric"]):
        raise ValueError(f"metric: {metric!r} is not in the comparison ({', '.join(comparison.metrics())})")
    part = comparison.summary[comparison.summary["metric"] == metric].reset_index(drop=True)
    runs = comparison.runs[comparison.runs["metric"] == metric]
    y = np.arange(len(part))[::-1].astype(float)
    row = dict(zip(part["config"], y, strict=True))
    short, shared = short_labels(list(part["config"]))
    with paper_style():
        fig, ax = new_figure(width=COLUMN_WIDTH, height=0.8 + 0.28 * len(part))
        ax.plot(runs["value"], runs["config"].map(row) + 0.18, "o", color=GREY, markersize=2.5, alpha=0.8,
                gid="seeds", linestyle="none")
        _interval_rows(ax, part["mean"].to_numpy(float), part["mean_ci_lower"].to_numpy(float),
                       part["mean_ci_upper"].to_numpy(float), y, "means")
        ax.set_yticks(y, [text(short[c]) for c in part["config"]])
        ax.set_ylim(-0.6, len(part) - 0.4)
        ax.set_xlabel(text(metric))
        if shared:
            ax.set_title(text(textwrap.shorten(shared, 60)))
    caption = (f"{metric} per configuration (test split; accuracies: higher is better): diamond and bar, mean over "
               f"seeds with its {comparison.level:.0%} t-interval (none with one seed); grey dots, the seeds.")
    return PaperFigure(f"comparison_{metric}", fig, caption)


def paired(comparison, metric: str = "acc_fused") -> PaperFigure:
    """Paired differences ``config_b - config_a`` of ``metric`` on shared seeds with their t-intervals."""
    part = comparison.paired[comparison.paired["metric"] == metric].reset_index(drop=True)
    if part.empty:
        raise ValueError(f"metric: no paired differences of {metric!r} (one configuration, or no shared seeds)")
    y = np.arange(len(part))[::-1].astype(float)
    short, shared = short_labels(list(dict.fromkeys([*part["config_a"], *part["config_b"]])))
    with paper_style():
        fig, ax = new_figure(width=COLUMN_WIDTH, height=0.8 + 0.28 * len(part))
        _interval_rows(ax, part["mean_diff"].to_numpy(float), part["mean_diff_ci_lower"].to_numpy(float),
                       part["mean_diff_ci_upper"].to_numpy(float), y, "differences")
        ax.axvline(0, color=GREY, linestyle=":", linewidth=0.8)
        ax.set_yticks(y, [f"{text(short[b])} − {text(short[a])}"
                          for a, b in zip(part["config_a"], part["config_b"], strict=True)])
        ax.set_ylim(-0.6, len(part) - 0.4)
        ax.set_xlabel(f"paired difference of {text(metric)}")
        if shared:
            ax.set_title(text(textwrap.shorten(shared, 60)))
    caption = (f"Paired differences of {metric} (configuration B minus A, on the seeds both have, which share the "
               f"split and initialisation): diamond, mean; bar, {comparison.level:.0%} t-interval; right of 0 "
               "(dotted) B scores higher.")
    return PaperFigure(f"comparison_paired_{metric}", fig, caption)


def paper_figures(comparison) -> list[PaperFigure]:
    """For fused accuracy (else the first metric): configurations, and the paired differences if any."""
    metrics = comparison.metrics()
    if not metrics:
        return []
    metric = "acc_fused" if "acc_fused" in metrics else metrics[0]
    figs = [configurations(comparison, metric)]
    if (comparison.paired["metric"] == metric).any():
        figs.append(paired(comparison, metric))
    return figs
