"""Paper figures of a conformal Shapley analysis (:class:`workbench.analyses.shapley.ShapleyResult`).

- Forest plot, one row per modality: the mean Shapley value over calibration samples with its
  t-interval at the result's ``level`` (dot and thick bar) and the marginal conformal prediction
  interval of one test sample's value at miscoverage ``alpha`` (thin bar). Unbounded conformal
  limits (too few calibration samples for ``alpha``) are drawn to the panel edge and said so.
- Accuracy of the modalities chosen by each selection rule against how many are used (``q``),
  with the Wilson intervals of the result's ``selection`` table as bands.

Example
-------
>>> figs = paper_figures(result)  # doctest: +SKIP
>>> [f.name for f in figs]  # doctest: +SKIP
['shapley_forest', 'shapley_selection']
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from widgets.paper import PaperFigure
from widgets.paper.style import COLUMN_WIDTH, GREY, color, new_figure, paper_style, text

CONFORMAL_COLOR, MEAN_COLOR = "#56B4E9", "#0072B2"


def drawn_limits(modalities: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The conformal limits as drawn: infinite ones clipped to 1.2 x the largest finite |limit|.

    Examples
    --------
    >>> lo, hi = drawn_limits(pd.DataFrame({"lower": [-1.0, -np.inf], "upper": [0.5, 2.0]}))
    >>> lo.tolist(), hi.tolist()
    ([-1.0, -2.4], [0.5, 2.0])
    """
    lo, hi = modalities["lower"].to_numpy(float), modalities["upper"].to_numpy(float)
    finite = np.abs(np.r_[lo, hi][np.isfinite(np.r_[lo, hi])])
    span = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    return np.where(np.isfinite(lo), lo, -1.2 * span), np.where(np.isfinite(hi), hi, 1.2 * span)


def forest(result, modalities: pd.DataFrame | None = None) -> PaperFigure:
    """Forest plot of ``modalities`` (default ``result.modalities``; or a table of
    :func:`workbench.analyses.shapley.intervals_for_alpha`). Rows top to bottom in table order."""
    part = result.modalities if modalities is None else modalities
    if part.empty:
        raise ValueError("modalities: the table is empty")
    y = np.arange(len(part))[::-1].astype(float)  # first modality on top
    lo, hi = drawn_limits(part)
    alpha = float(part["alpha"].iloc[0])
    level = float(part["level"].iloc[0]) if "level" in part else 1 - alpha
    mean = part["mean"].to_numpy(float)
    with paper_style():
        fig, ax = new_figure(width=COLUMN_WIDTH, height=0.8 + 0.32 * len(part))
        ax.hlines(y, lo, hi, color=CONFORMAL_COLOR, linewidth=1.2, gid="conformal",
                  label=f"conformal interval ({1 - alpha:.0%})")
        ax.errorbar(mean, y, xerr=np.vstack([mean - part["mean_ci_lower"].to_numpy(float),
                                             part["mean_ci_upper"].to_numpy(float) - mean]),
                    fmt="o", color=MEAN_COLOR, elinewidth=2.6, markersize=4, gid="mean",
                    label=f"mean ({level:.0%} t-interval)")
        ax.axvline(0, color=GREY, linestyle=":", linewidth=0.8)
        ax.set_yticks(y, [text(m) for m in part["modality"]])
        ax.set_ylim(-0.6, len(part) - 0.4)
        ax.set_xlabel("Shapley value (log-loss reduction, nats)")
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, borderaxespad=0.2)
    unbounded = ((~np.isfinite(part["lower"].to_numpy(float))) | (~np.isfinite(part["upper"].to_numpy(float)))).any()
    where = f" on {result.dataset}" if getattr(result, "dataset", "") else ""
    caption = (f"Shapley value of each modality{where} ({result.value_method} coalition values): the reduction of "
               "the log loss (nats) a modality brings on average over the coalitions it joins; positive values "
               "help, larger is more helpful, 0 (dotted) is no contribution. Dot and thick bar: mean over the "
               f"{result.n_calib} calibration samples with its {level:.0%} t-interval. Thin bar: marginal "
               f"conformal interval at miscoverage alpha = {alpha:g}, which holds one test sample's value with "
               f"probability {1 - alpha:.0%}.")
    if unbounded:
        caption += " Bars reaching the panel edge are unbounded (too few calibration samples for this alpha)."
    return PaperFigure("shapley_forest", fig, caption)


def selection(result) -> PaperFigure:
    """Test accuracy against the number of modalities used, one line and band per selection rule."""
    sel = result.selection
    level = float(result.level)
    with paper_style():
        fig, ax = new_figure(height=2.2)
        for i, (rule, part) in enumerate(sel.groupby("rule", sort=False)):
            c = color(i)
            ax.fill_between(part["q"], part["accuracy_ci_lower"], part["accuracy_ci_upper"], color=c, alpha=0.2,
                            linewidth=0, gid=f"band:{rule}")
            ax.plot(part["q"], part["accuracy"], marker="o", color=c, gid=f"line:{rule}", label=text(rule))
        ax.set_xlabel("modalities used (q)")
        ax.set_ylabel("test accuracy")
        ax.set_xticks(sorted(sel["q"].unique()))
        ax.legend(title="selection rule")
    caption = ("Test accuracy (share of correct predictions, higher is better) when each sample uses only the "
               "q modalities a rule selects, against q; bands: Wilson intervals at "
               f"{level:.0%} over the test samples.")
    return PaperFigure("shapley_selection", fig, caption)


def paper_figures(result) -> list[PaperFigure]:
    """The forest plot of the modality intervals and (when present) the selection curves."""
    figs = [forest(result)]
    if len(result.selection):
        figs.append(selection(result))
    return figs
