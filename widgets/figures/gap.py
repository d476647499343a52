"""Figures of the modality gap: histogram with the GMM fit, GMM parameters over epochs,
unimodal accuracy over epochs, and the balancing benchmark table.

Pure functions ``result -> go.Figure``; they compute nothing beyond drawing the stored fit.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from widgets.text import add_caption, escaped_figure

COLORS = {"balanced": "#2a9d8f", "imbalanced": "#e76f51"}


def gap_sign(pair: str) -> str:
    """The sign convention of the gap of ``pair`` ("a-b" or "m-rest"), in words."""
    first, _, second = str(pair).partition("-")
    if second == "rest":
        return (f"Gap = p_true of {first} minus the mean p_true of the other modalities (p_true: the probability "
                "a unimodal head gives the true class); > 0: " f"{first} is surer of the true class.")
    return (f"Gap = p_true of {first} minus p_true of {second} (p_true: the probability a unimodal head gives "
            f"the true class); > 0: {first} is surer of the true class, < 0: {second} is.")


def _default(result, pair, epoch):
    return pair or result.pairs[0], result.last_epoch() if epoch is None else int(epoch)


@escaped_figure
def gap_histogram_figure(result, pair: str | None = None, epoch: int | None = None, *,
                         label: int | None = None, bins: int = 40) -> go.Figure:
    """Histogram of the gap (one pair, one epoch, optionally one class) with the two fitted
    GMM components (scaled densities) and the posterior of the imbalanced component."""
    pair, epoch = _default(result, pair, epoch)
    g = result.gaps[(result.gaps["pair"] == pair) & (result.gaps["epoch"] == epoch)]
    if label is not None and "y" in g:
        g = g[g["y"] == label]
    fit = result.gmm[(result.gmm["pair"] == pair) & (result.gmm["epoch"] == epoch)]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Histogram(x=g["gap"], nbinsx=bins, histnorm="probability density", name="gap",
                               marker_color="#8d99ae", opacity=0.6))
    lo, hi = (float(g["gap"].min()), float(g["gap"].max())) if len(g) else (-1.0, 1.0)
    grid = np.linspace(lo - 0.05, hi + 0.05, 300)
    for r in fit.itertuples():
        dens = r.weight * np.exp(-0.5 * (grid - r.mean) ** 2 / r.variance) / np.sqrt(2 * np.pi * r.variance)
        fig.add_trace(go.Scatter(x=grid, y=dens, name=f"{r.component} (π={r.weight:.2f}, μ={r.mean:.2f})",
                                 line={"color": COLORS[r.component], "width": 2}))
    order = np.argsort(g["gap"].to_numpy())
    fig.add_trace(go.Scatter(x=g["gap"].to_numpy()[order], y=g["posterior"].to_numpy()[order],
                             name="posterior P(imbalanced)", line={"color": "black", "dash": "dot"}),
                  secondary_y=True)
    who = "" if label is None else f", class {label}"
    fig.update_layout(title=f"Modality gap {pair}, epoch {epoch}{who} (n={len(g)})",
                      xaxis_title="gap (p_true difference)", bargap=0.02)
    fig.update_yaxes(title_text="density", secondary_y=False)
    fig.update_yaxes(title_text="posterior", range=[0, 1.02], secondary_y=True)
    add_caption(fig, gap_sign(pair) + " Bars: histogram of the samples' gaps (density); curves: the two "
                     "fitted Gaussian components, scaled by their weight (π: share of samples in the component, "
                     "μ: its mean gap); the balanced component is the one with the smaller mean |gap|. Dotted, "
                     "right axis: posterior probability that a sample belongs to the imbalanced component. Mass "
                     "near 0 is good (the modalities are equally sure).")
    return fig


@escaped_figure
def gmm_params_figure(result, pair: str | None = None) -> go.Figure:
    """Component means (with intervals), weights and the share of imbalanced samples over epochs."""
    pair = pair or result.pairs[0]
    fit = result.gmm[result.gmm["pair"] == pair]
    summ = result.summary[result.summary["pair"] == pair]
    # the intervals under-cover when components overlap; say which kind is drawn (issue 14, item 9)
    kind = gmm_interval_kind(result, pair)
    level = result.level  # results saved before the field load with 0.95, the level they used
    fig = make_subplots(rows=1, cols=2, subplot_titles=(f"component mean ± {level:.0%} interval ({kind})",
                                                        "weight / share imbalanced"))
    for comp, part in fit.groupby("component"):
        c = COLORS[comp]
        fig.add_trace(go.Scatter(x=part["epoch"], y=part["mean"], name=f"μ {comp}", line={"color": c},
                                 error_y={"type": "data", "array": part["mean_ci_upper"] - part["mean"],
                                          "arrayminus": part["mean"] - part["mean_ci_lower"]}), row=1, col=1)
        fig.add_trace(go.Scatter(x=part["epoch"], y=part["weight"], name=f"π {comp}", line={"color": c, "dash": "dash"}),
                      row=1, col=2)
    fig.add_trace(go.Scatter(x=summ["epoch"], y=summ["share_imbalanced"], name="share with posterior > 0.5",
                             line={"color": "black"}), row=1, col=2)
    fig.update_layout(title=f"GMM fit of the gap {pair} over epochs")
    fig.update_xaxes(title_text="epoch")
    add_caption(fig, gmm_params_caption(result, pair))
    return fig


def gmm_interval_kind(result, pair: str) -> str:
    """How the component means' intervals were computed (``"approximate"`` for results saved without it)."""
    fit = result.gmm[result.gmm["pair"] == pair]
    return fit["ci_method"].iloc[0] if "ci_method" in fit and len(fit) else "approximate"


def gmm_params_caption(result, pair: str, *, panels: tuple[str, str] = ("Left", "Right")) -> str:
    """Caption of the GMM-over-epochs figure (interactive: side by side; paper: ``("Top", "Bottom")``)."""
    return (gap_sign(pair) + f" {panels[0]}: mean gap μ of each GMM component per epoch, with its {result.level:.0%} "
            f"interval ({gmm_interval_kind(result, pair)}; it under-covers when the components overlap). {panels[1]}: "
            "component weights π (dashed: share of samples in each component) and the share of samples whose "
            "posterior of the imbalanced component is above 0.5 (solid; lower is better).")


@escaped_figure
def unimodal_accuracy_figure(result) -> go.Figure:
    """Accuracy of each unimodal head over epochs, with Wilson intervals (at ``result.level``)."""
    fig = go.Figure()
    for m, part in result.unimodal.groupby("modality", sort=False):
        fig.add_trace(go.Scatter(x=part["epoch"], y=part["accuracy"], name=m, mode="lines+markers",
                                 error_y={"type": "data", "array": part["accuracy_ci_upper"] - part["accuracy"],
                                          "arrayminus": part["accuracy"] - part["accuracy_ci_lower"]}))
    fig.update_layout(title="Unimodal accuracy", xaxis_title="epoch",
                      yaxis_title="accuracy", yaxis_range=[0, 1.02])
    add_caption(fig, "Share of samples each modality's own unimodal head classifies correctly, per epoch "
                     f"(higher is better); error bars: {result.level:.0%} Wilson intervals.")
    return fig


@escaped_figure
def benchmark_figure(result, dataset: str | None = None) -> go.Figure:
    """Mean ± sd over seeds of the fused accuracy and each modality's probe, per method."""
    dataset = dataset or result.datasets[0]
    s = result.summary[result.summary["dataset"] == dataset]
    fig = go.Figure()
    for (kind, model), part in s.groupby(["kind", "model"], sort=False):
        name = "fused" if kind == "fused" else f"probe {model}"
        fig.add_trace(go.Bar(x=part["method"], y=part["mean"], name=name, error_y={"type": "data", "array": part["sd"]}))
    fig.update_layout(barmode="group", title=f"Balancing benchmark on {dataset} (mean ± sd over seeds)",
                      yaxis_title="test accuracy", yaxis_range=[0, 1.05])
    add_caption(fig, "Test accuracy per balancing method (higher is better): the fused model and a linear probe "
                     "on each modality's features; bars: mean over seeds, error bars: ± one standard deviation "
                     "over seeds (spread, not a confidence interval).")
    return fig


def _one_pair_at_a_time(figures: dict[str, go.Figure]) -> go.Figure:
    """The figures of every pair in one figure whose dropdown shows one pair at a time.

    The menu is plotly's own (``updatemenus``), so it works wherever the figure is drawn: the
    HTML report and a saved notebook's static copy as well as the live panels. Each entry shows
    that pair's traces and puts back its title and annotations (caption, subplot titles).
    """
    pairs = list(figures)
    if len(pairs) == 1:
        return figures[pairs[0]]
    spans, data = [], []
    for pair in pairs:
        spans.append((len(data), len(data) + len(figures[pair].data)))
        data += [trace.to_plotly_json() for trace in figures[pair].data]
    for i, trace in enumerate(data):
        trace["visible"] = spans[0][0] <= i < spans[0][1]  # the first pair to begin with
    fig = go.Figure(data=data, layout=figures[pairs[0]].layout)
    buttons = []
    for pair, (start, stop) in zip(pairs, spans, strict=True):
        layout = figures[pair].layout
        buttons.append({"label": pair, "method": "update", "args": [
            {"visible": [start <= i < stop for i in range(len(data))]},
            {"title.text": layout.title.text, "annotations": [a.to_plotly_json() for a in layout.annotations]}]})
    fig.update_layout(updatemenus=[{"buttons": buttons, "direction": "down", "showactive": True, "active": 0,
                                    "x": 1.0, "xanchor": "right", "y": 1.0, "yanchor": "bottom", "pad": {"b": 28}}])
    return fig


@escaped_figure
def gap_histogram_by_pair_figure(result, epoch: int | None = None) -> go.Figure:
    """:func:`gap_histogram_figure` of every pair the result holds (each pair of modalities and each
    modality against the rest), one pair shown at a time by the figure's own dropdown."""
    return _one_pair_at_a_time({str(p): gap_histogram_figure(result, p, epoch) for p in result.pairs})


@escaped_figure
def gmm_params_by_pair_figure(result) -> go.Figure:
    """:func:`gmm_params_figure` of every pair the result holds, one pair at a time (its dropdown)."""
    return _one_pair_at_a_time({str(p): gmm_params_figure(result, p) for p in result.pairs})


def report_figures(result) -> list[go.Figure]:
    """Figures the HTML report, the run panel and the dashboard show for a saved ``gap`` result:
    the histogram and the GMM fit of every pair (a pair selector in each figure) and the unimodal
    accuracy over epochs."""
    if not len(result.pairs):
        return [unimodal_accuracy_figure(result)] if len(result.unimodal) else []
    figs = [gap_histogram_by_pair_figure(result), gmm_params_by_pair_figure(result)]
    if len(result.unimodal):
        figs.append(unimodal_accuracy_figure(result))
    return figs
