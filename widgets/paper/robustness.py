"""Paper figures of a robustness analysis (:class:`workbench.analyses.robustness.RobustnessResult`).

Robustness curves: accuracy against the missing rate and against the SNR (axis reversed, as in
the interactive figure), a line per corrupted modality with its bootstrap band (``curves``
table); the presence-pattern heat map (``patterns``); and, when computed, one model versus a model per subset (``subsets``: difference per
presence pattern with its t-interval over seeds). Captions are the interactive figures'
(:func:`widgets.figures.robustness.curves_caption`).
"""

from __future__ import annotations

import numpy as np

from widgets.figures.robustness import (
    METRIC_LABELS,
    curve_axis_titles,
    curves_caption,
    line_labels,
    patterns_caption,
    patterns_table,
)
from widgets.paper import PaperFigure
from widgets.paper.style import (
    COLUMN_WIDTH,
    GREY,
    annotated_heatmap,
    color,
    new_figure,
    paper_style,
    text,
)


def curves(result, perturbation: str = "missing", metric: str = "accuracy") -> PaperFigure:
    """``metric`` against the severity of ``perturbation`` per corrupted modality, with bands."""
    part = result.curves[(result.curves["perturbation"] == perturbation) & (result.curves["metric"] == metric)]
    if part.empty:
        raise ValueError(f"perturbation: no {perturbation!r} curves for metric {metric!r} in this result")
    label = METRIC_LABELS.get(metric, metric)
    title, xtitle = curve_axis_titles(perturbation, label)
    with paper_style():
        fig, ax = new_figure(height=2.5)
        for i, (modality, sub) in enumerate(part.groupby(line_labels(part), sort=False)):
            sub = sub.sort_values("severity")
            c = color(i)
            ax.fill_between(sub["severity"], sub["value_ci_lower"], sub["value_ci_upper"], color=c, alpha=0.2,
                            linewidth=0, gid=f"band:{modality}")
            ax.plot(sub["severity"], sub["value"], marker="o", color=c, gid=f"line:{modality}", label=text(modality))
        if perturbation == "noise":
            ax.invert_xaxis()
        ax.set_xlabel(xtitle)
        ax.set_ylabel(f"{label} (higher is better)")
        ax.legend(title="corrupted", loc="best")
    return PaperFigure(f"robustness_{perturbation}_{metric}", fig, f"{title}. " + curves_caption(part, perturbation))


def subsets(result) -> PaperFigure:
    """One model (modality dropout) minus a model per subset, per presence pattern, with t-intervals."""
    part = result.subsets.reset_index(drop=True)
    y = np.arange(len(part))[::-1].astype(float)
    d = part["difference"].to_numpy(float)
    lo, hi = part["difference_ci_lower"].to_numpy(float), part["difference_ci_upper"].to_numpy(float)
    ok = np.isfinite(lo) & np.isfinite(hi)
    with paper_style():
        fig, ax = new_figure(width=COLUMN_WIDTH, height=0.8 + 0.26 * len(part))
        ax.errorbar(d[ok], y[ok], xerr=np.vstack([d[ok] - lo[ok], hi[ok] - d[ok]]), fmt="none", ecolor=color(0),
                    elinewidth=1.4, gid="intervals")
        ax.plot(d, y, "o", color=color(0), gid="differences")
        ax.axvline(0, color=GREY, linestyle=":", linewidth=0.8)
        ax.set_yticks(y, [text(p) for p in part["pattern"]])
        ax.set_ylim(-0.6, len(part) - 0.4)
        ax.set_xlabel("test accuracy difference")
        ax.set_ylabel("modalities present")
    level, seeds = float(part["level"].iloc[0]), int(part["n_seeds"].max())
    caption = ("One model trained for every subset (modality dropout) minus a model trained per subset, test "
               f"accuracy per presence pattern; right of 0 (dotted) the one model is better. Paired over {seeds} "
               f"seeds (same split per seed); bars: {level:.0%} t-intervals.")
    return PaperFigure("robustness_subsets", fig, caption)


def patterns(result) -> PaperFigure:
    """Heat map of every presence pattern (rows, by size) x metric, the interval written in each cell."""
    rows, metrics, values, cell_text = patterns_table(result.patterns)
    with paper_style():
        fig, ax = new_figure(height=0.9 + 0.3 * len(rows))
        annotated_heatmap(ax, values, rows=rows, columns=[METRIC_LABELS.get(m, m) for m in metrics], vmin=0, vmax=1,
                          cell_text=[[t.replace(" [", "\n[") for t in r] for r in cell_text], label="score")
        ax.set_xlabel("metric")
        ax.set_ylabel("modalities present")
    return PaperFigure("robustness_patterns", fig, patterns_caption(result.patterns))


def paper_figures(result) -> list[PaperFigure]:
    """Accuracy against missing rate and against SNR (those present), the presence patterns and the
    subset comparison (when computed)."""
    figs = [curves(result, p) for p in ("missing", "noise", "fault")
            if ((result.curves["perturbation"] == p) & (result.curves["metric"] == "accuracy")).any()]
    if not result.patterns.empty:
        figs.append(patterns(result))
    if not result.subsets.empty:
        figs.append(subsets(result))
    return figs
