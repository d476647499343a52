"""Paper figures of learning curves per coalition (:class:`workbench.analyses.learning_curves.LearningCurvesResult`).

Accuracy (and log loss) on the test split against the number of training samples ``n``, one
line per coalition of modalities with its t-interval over seeds as a band (``curves`` table);
unimodal coalitions dashed, the full model thick, and the crossover ``n`` (from which the full
model stays ahead of the best unimodal one) as a dotted vertical line; and the connection (R^2
of one modality's embedding from another's) and heterogeneity (pair gain) heat maps with their
intervals written in the cells (``pairs`` table).

Example
-------
>>> [f.name for f in paper_figures(result)]  # doctest: +SKIP
['learning_curves_accuracy', 'learning_curves_log_loss', 'learning_curves_connection']
"""

from __future__ import annotations

import numpy as np

from widgets.figures.learning_curves import connection_caption, connection_tables
from widgets.paper import PaperFigure
from widgets.paper.style import (
    CMAP_DIVERGING,
    COLUMN_WIDTH,
    GREY,
    annotated_heatmap,
    color,
    new_figure,
    paper_style,
    text,
)

METRICS = {"accuracy": ("test accuracy", "higher is better"), "log_loss": ("test log loss (nats)", "lower is better")}


def learning_curve(result, metric: str = "accuracy") -> PaperFigure:
    """``metric`` against n per coalition, with the seed band (t-interval at ``result.level``)."""
    if metric not in METRICS:
        raise ValueError(f"metric: {metric!r} is not one of {', '.join(METRICS)}")
    curves = result.curves.sort_values(["size", "coalition", "n"], kind="stable")
    full_size = int(curves["size"].max())
    n_seeds = int(result.runs["seed"].nunique())
    label, direction = METRICS[metric]
    with paper_style():
        fig, ax = new_figure(width=COLUMN_WIDTH, height=3.0)
        for i, (coalition, part) in enumerate(curves.groupby("coalition", sort=False)):
            size = int(part["size"].iloc[0])
            c = "black" if size == full_size else color(i)
            ax.fill_between(part["n"], part[f"{metric}_ci_lower"], part[f"{metric}_ci_upper"], color=c, alpha=0.15,
                            linewidth=0, gid=f"band:{coalition}")
            ax.plot(part["n"], part[metric], color=c, marker="o", markersize=3, gid=f"line:{coalition}",
                    linestyle="--" if size == 1 else "-", linewidth=1.8 if size == full_size else 1.0,
                    label=text(coalition))
        if result.crossover_n is not None and np.isfinite(result.crossover_n):
            ax.axvline(result.crossover_n, color=GREY, linestyle=":", linewidth=0.9, gid="crossover")
        ns = np.sort(curves["n"].unique())
        if len(ns) > 2 and ns[-1] / ns[0] >= 8:
            ax.set_xscale("log")  # sizes on a geometric grid read best on a log axis
        ax.set_xlabel("training samples (n)")
        ax.set_ylabel(label)
        # below the axes: with 2^M - 1 coalitions a legend inside would cover the curves
        ax.legend(title="coalition", loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=3)
    crossover = ("" if result.crossover_n is None else
                 f" Dotted: the crossover n = {result.crossover_n:g}, from which the full model's mean accuracy stays "
                 "above the best unimodal one's.")
    interval = (f" ({result.level:.0%} interval {result.gap_ci_lower:+.3f} to {result.gap_ci_upper:+.3f})"
                if np.isfinite(result.gap_ci_lower) and np.isfinite(result.gap_ci_upper) else "")
    gap = f" At the largest n the full model leads the best unimodal one by {result.gap:+.3f}{interval}."
    caption = (f"Learning curves: {label} ({direction}) of the model of each coalition of modalities, trained "
               f"on n samples, mean over {n_seeds} seeds; bands: {result.level:.0%} t-intervals over seeds. "
               "Dashed: one modality; thick black: all modalities." + crossover + (gap if metric == "accuracy" else ""))
    return PaperFigure(f"learning_curves_{metric}", fig, caption)


def connection(result) -> PaperFigure:
    """Heat maps over (source, target): connection R^2 (top) and the pair gain (bottom), intervals in the cells."""
    names, r2, r2_text, het, het_text = connection_tables(result)
    het_values = het.to_numpy(float)
    bound = float(np.nanmax(np.abs(het_values))) if np.isfinite(het_values).any() else 1.0
    with paper_style():
        fig, (left, right) = new_figure(height=2 * (1.0 + 0.5 * len(names)), nrows=2)
        annotated_heatmap(left, r2.to_numpy(float), rows=names, columns=names, vmin=0, vmax=1, label="R^2",
                          cell_text=[[t.replace(" [", "\n[") for t in row] for row in r2_text], gid="connection")
        annotated_heatmap(right, het_values, rows=names, columns=names, cmap=CMAP_DIVERGING, vmin=-bound, vmax=bound,
                          label="accuracy gain", cell_text=[[t.replace(" [", "\n[") for t in row] for row in het_text],
                          gid="heterogeneity")
        left.set_title("connection: R^2 of target from source")
        right.set_title("heterogeneity: pair gain")
        left.set_xlabel("target modality")
        left.set_ylabel("source modality")
        right.set_xlabel("target modality")
        right.set_ylabel("source modality")
    return PaperFigure("learning_curves_connection", fig, " ".join(connection_caption(result, panels=("Top", "Bottom"))))


def paper_figures(result) -> list[PaperFigure]:
    """Accuracy and log loss against n, and the connection/heterogeneity maps when pairs were measured."""
    figs = [learning_curve(result, "accuracy"), learning_curve(result, "log_loss")]
    if len(result.pairs):
        figs.append(connection(result))
    return figs
