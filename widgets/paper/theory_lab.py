"""Paper figures of the theory lab (:class:`workbench.analyses.theory_lab.TheoryLabResult`, Lu 2023).

The interactive figures' three views (:mod:`widgets.figures.theory`), drawn for print with their
captions: log-log excess risk against n per learner with the t-interval bands over seeds, the
UNI/MM ratio against n with the sqrt(n) reference line, and the heat map of log10(UNI/MM) over
(eps, sigma_y) at the largest n. Values come from ``result.summary`` and ``result.ratios`` as they
are; excess risks below 1e-16 are drawn at 1e-16 on the log axis, as in the interactive figure.

Examples
--------
>>> from workbench.analyses.theory_lab import theory_lab
>>> res = theory_lab(ns=[16, 64], eps=[0.5], sigma_y=[0.0], seeds=2, learners=("mm", "uni_erm"),
...                  grid=256, n_test=512, progress=False)
>>> [f.name for f in paper_figures(res)]
['theory_excess_risk', 'theory_ratio', 'theory_advantage_uni_erm']
"""

from __future__ import annotations

import numpy as np

from widgets.figures.theory import (
    advantage_caption,
    advantage_table,
    cell,
    default_cell,
    excess_risk_caption,
    ratio_caption,
    sqrt_reference,
)
from widgets.paper import PaperFigure
from widgets.paper.style import (
    CMAP_DIVERGING,
    annotated_heatmap,
    color,
    new_figure,
    paper_style,
    text,
)

FLOOR = 1e-16  # an exact learner's 0 on a log axis


def excess_risk(result) -> PaperFigure:
    """Excess risk against n per learner (log-log), bands = the result's intervals over seeds."""
    eps, sigma_y, x_only = default_cell(result)
    s = cell(result.summary, eps, sigma_y, x_only)
    with paper_style():
        fig, ax = new_figure(height=2.5)
        for i, (learner, g) in enumerate(s.groupby("learner", sort=False)):
            g = g.sort_values("n")
            c = color(i)
            ax.fill_between(g["n"], g["excess_risk_ci_lower"].clip(lower=FLOOR), g["excess_risk_ci_upper"].clip(lower=FLOOR),
                            color=c, alpha=0.2, linewidth=0, gid=f"band:{learner}")
            ax.plot(g["n"], g["excess_risk"].clip(lower=FLOOR), marker="o", color=c, gid=f"line:{learner}",
                    label=text(learner))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("training samples n")
        ax.set_ylabel("excess risk (lower is better)")
        ax.set_title(text(f"eps={eps}, sigma_y={sigma_y}"))
        ax.legend(loc="best")
    return PaperFigure("theory_excess_risk", fig, excess_risk_caption(result, s))


def ratio(result) -> PaperFigure:
    """UNI/MM ratio against n per unimodal learner with t-interval bars and the sqrt(n) reference."""
    eps, sigma_y, x_only = default_cell(result)
    r = cell(result.ratios, eps, sigma_y, x_only)
    with paper_style():
        fig, ax = new_figure(height=2.5)
        for i, (uni, g) in enumerate(r.groupby("uni", sort=False)):
            g = g.sort_values("n")
            est = g["ratio"].to_numpy(float)
            err = np.vstack([est - g["ratio_ci_lower"].to_numpy(float), g["ratio_ci_upper"].to_numpy(float) - est])
            ax.errorbar(g["n"], est, yerr=err, marker="o", color=color(i), gid=f"ratio:{uni}", label=text(f"{uni} / mm"))
        n, ref = sqrt_reference(r)
        ax.plot(n, ref, linestyle=":", color="black", gid="sqrt_reference", label="sqrt(n) reference")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("training samples n")
        ax.set_ylabel("UNI / MM excess risk (above 1: MM ahead)")
        ax.legend(loc="best")
    return PaperFigure("theory_ratio", fig, ratio_caption(result))


def advantage(result, uni: str | None = None) -> PaperFigure:
    """log10(UNI/MM) over (eps, sigma_y) at the largest n, annotated, centred at 0."""
    uni = str(result.ratios["uni"].iloc[0]) if uni is None else uni
    n, table = advantage_table(result, n=None, uni=uni, x_only=0.0)
    values = np.log10(table.to_numpy(float))
    bound = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
    with paper_style():
        fig, ax = new_figure(height=0.9 + 0.35 * len(table.index))
        annotated_heatmap(ax, values, rows=[str(v) for v in table.index], columns=[str(v) for v in table.columns],
                          cmap=CMAP_DIVERGING, vmin=-bound, vmax=bound, fmt="{:+.1f}", label="log10 ratio")
        ax.set_xlabel("eps (heterogeneity)")
        ax.set_ylabel("sigma_y (connection noise)")
    return PaperFigure(f"theory_advantage_{uni}", fig, advantage_caption(uni, n))


def paper_figures(result) -> list[PaperFigure]:
    """Excess risk, and when the result has ratios, the ratio curve and the advantage heat map."""
    figs = [excess_risk(result)]
    if len(result.ratios):
        figs += [ratio(result), advantage(result)]
    return figs
