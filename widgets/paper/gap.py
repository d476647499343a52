"""Paper figures of the modality gap (:class:`workbench.analyses.gap.GapResult`).

The gap's histogram (density) with the stored two-component GMM fit drawn over it: each
component as ``weight x normal density`` and their sum, so the curves integrate to the same
area as the histogram; and, over epochs, the components' means with their intervals, weights and
the share of samples more likely imbalanced. Nothing is refitted: the curves come from
``result.gmm`` and ``result.summary``.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from workbench.analyses.gap import gap_analysis
>>> rng = np.random.default_rng(0)
>>> frame = pd.DataFrame({"epoch": 1, "sample": np.arange(300), "y": 0,
...                       "p_true_a": rng.uniform(0.6, 1, 300), "p_true_b": rng.uniform(0, 1, 300)})
>>> [f.name for f in paper_figures(gap_analysis(frame, ["a", "b"]))]
['gap_histogram_a-b_epoch1']
"""

from __future__ import annotations

import numpy as np
import seaborn as sns

from widgets.figures.gap import gmm_params_caption
from widgets.paper import PaperFigure
from widgets.paper.style import GREY, new_figure, paper_style, text

# balanced = blue, imbalanced = vermillion (Okabe-Ito), as the components' meaning is fixed
COMPONENT_COLORS = {"balanced": "#0072B2", "imbalanced": "#D55E00"}


def component_density(grid: np.ndarray, weight: float, mean: float, variance: float) -> np.ndarray:
    """``weight * N(grid; mean, variance)``: one mixture component scaled by its weight.

    Examples
    --------
    >>> round(float(component_density(np.array([0.0]), 0.5, 0.0, 1.0)[0]), 4)
    0.1995
    """
    return weight * np.exp(-0.5 * (grid - mean) ** 2 / variance) / np.sqrt(2 * np.pi * variance)


def gap_histogram(result, pair: str | None = None, epoch: int | None = None, *, bins: int = 30,
                  grid_points: int = 300) -> PaperFigure:
    """Histogram of the gap of ``pair`` at ``epoch`` (default: first pair, last epoch) with the GMM fit.

    Parameters
    ----------
    result : GapResult
    pair, epoch : optional
        Which pair (``"a-b"`` or ``"m-rest"``) and epoch; ``ValueError`` if the result has no such.
    bins : int
        Histogram bins (equal width over the observed range; ``numpy.histogram_bin_edges``).
    grid_points : int
        Points of the density curves.
    """
    pair = result.pairs[0] if pair is None else pair
    epoch = result.last_epoch() if epoch is None else int(epoch)
    if pair not in result.pairs:
        raise ValueError(f"pair: {pair!r} is not in this result ({', '.join(result.pairs)})")
    if bins < 1:
        raise ValueError(f"bins: must be >= 1, got {bins}")
    g = result.gaps[(result.gaps["pair"] == pair) & (result.gaps["epoch"] == epoch)]["gap"].to_numpy(float)
    if len(g) == 0:
        raise ValueError(f"epoch: no gaps of pair {pair!r} at epoch {epoch} (epochs: {result.epochs})")
    fit = result.gmm[(result.gmm["pair"] == pair) & (result.gmm["epoch"] == epoch)]
    edges = np.histogram_bin_edges(g, bins=bins)
    grid = np.linspace(edges[0] - 0.05, edges[-1] + 0.05, grid_points)
    with paper_style():
        fig, ax = new_figure(height=2.3)
        sns.histplot(x=g, bins=edges, stat="density", ax=ax, color=GREY, alpha=0.45, edgecolor="white",
                     linewidth=0.3, label="samples")
        total = np.zeros_like(grid)
        for r in fit.sort_values("component").itertuples():
            dens = component_density(grid, r.weight, r.mean, r.variance)
            total += dens
            ax.plot(grid, dens, color=COMPONENT_COLORS.get(r.component, "black"), gid=f"component:{r.component}",
                    label=f"{r.component} (π={r.weight:.2f}, μ={r.mean:+.2f})")
        if len(fit):
            ax.plot(grid, total, color="black", linestyle="--", linewidth=0.9, gid="mixture", label="mixture")
        ax.axvline(0, color=GREY, linestyle=":", linewidth=0.8)
        a, _, b = pair.partition("-")
        ax.set_xlabel(f"gap  p_true({text(a)}) − p_true({text(b)})")
        ax.set_ylabel("density")
        ax.set_title(f"Modality gap {text(pair)}, epoch {epoch} (n={len(g)})")
        ax.legend(loc="upper left")
    b_name = "mean of the other modalities" if b == "rest" else b
    caption = (f"Modality gap of pair {pair} at epoch {epoch}: per sample, the true-class probability of "
               f"{a}'s unimodal head minus that of {b_name} (unitless, between -1 and 1; positive: {a} is "
               f"the more confident modality). Grey: histogram of the {len(g)} samples as a density. Lines: the "
               "two-component Gaussian mixture fitted to the gap, each component as weight x normal density, "
               "dashed: their sum. The balanced component is the one with the smaller expected |gap|; a large "
               "weight of the imbalanced component (far from 0) means one modality dominates, so smaller is better.")
    return PaperFigure(f"gap_histogram_{pair}_epoch{epoch}", fig, caption)


def gmm_over_epochs(result, pair: str | None = None) -> PaperFigure:
    """The GMM fit of ``pair`` over epochs: component means with their intervals (left); component
    weights and the share of samples more likely imbalanced (right)."""
    pair = result.pairs[0] if pair is None else pair
    if pair not in result.pairs:
        raise ValueError(f"pair: {pair!r} is not in this result ({', '.join(result.pairs)})")
    fit = result.gmm[result.gmm["pair"] == pair]
    summary = result.summary[result.summary["pair"] == pair].sort_values("epoch")
    with paper_style():
        fig, (left, right) = new_figure(height=3.8, nrows=2, sharex=True)
        for comp, part in fit.groupby("component", sort=True):
            part = part.sort_values("epoch")
            c = COMPONENT_COLORS.get(comp, "black")
            mean = part["mean"].to_numpy(float)
            err = np.vstack([mean - part["mean_ci_lower"].to_numpy(float), part["mean_ci_upper"].to_numpy(float) - mean])
            left.errorbar(part["epoch"], mean, yerr=err, marker="o", color=c, gid=f"mean:{comp}", label=text(comp))
            right.plot(part["epoch"], part["weight"], color=c, linestyle="--", marker="o", gid=f"weight:{comp}",
                       label=f"π {text(comp)}")
        right.plot(summary["epoch"], summary["share_imbalanced"], color="black", marker="s", gid="share_imbalanced",
                   label="share imbalanced")
        left.axhline(0, color=GREY, linestyle=":", linewidth=0.8)
        left.set_ylabel("component mean gap μ")
        right.set_ylabel("weight / share")
        right.set_ylim(0, 1)
        right.set_xlabel("epoch")
        for ax in (left, right):
            ax.legend(loc="best")
        fig.suptitle(f"GMM fit of the gap {text(pair)} over epochs")
    return PaperFigure(f"gap_gmm_{pair}", fig, gmm_params_caption(result, pair, panels=("Top", "Bottom")))


def paper_figures(result) -> list[PaperFigure]:
    """The gap histogram with its GMM fit at the last epoch for the first three pairs, and the GMM
    fit over epochs for the first pair when more than one epoch was recorded."""
    figs = [gap_histogram(result, pair) for pair in result.pairs[:3]]
    if len(result.epochs) > 1:
        figs.append(gmm_over_epochs(result))
    return figs
