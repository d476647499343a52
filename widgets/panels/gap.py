"""JupyterLab panels for the modality gap: a gap panel and a GMM-fit panel.

They take a :class:`workbench.analyses.gap.GapResult`, draw with :mod:`widgets.figures.gap` and
re-draw on control changes; they compute nothing.
"""

from __future__ import annotations

import ipywidgets as W

from widgets.figures.gap import gap_histogram_figure, gmm_params_figure, unimodal_accuracy_figure
from widgets.panels.view import FigureView, PanelBox


def gap_panel(result) -> PanelBox:
    """Gap histogram with GMM components and posterior; epoch slider, pair selector, class filter."""
    epochs = list(result.epochs)
    pair = W.Dropdown(options=list(result.pairs), description="pair")
    epoch = W.SelectionSlider(options=epochs, value=epochs[-1], description="epoch")
    classes = sorted(result.gaps["y"].unique().tolist()) if "y" in result.gaps else []
    label = W.Dropdown(options=[("all classes", None)] + [(f"class {c}", c) for c in classes], description="class")
    fig = FigureView(gap_histogram_figure(result, pair.value, epoch.value))

    def refresh(_=None):
        fig.show(gap_histogram_figure(result, pair.value, epoch.value, label=label.value))

    for w in (pair, epoch, label):
        w.observe(refresh, names="value")
    return PanelBox([W.HBox([pair, epoch, label]), fig, gmm_panel(result, pair=pair)])


def gmm_panel(result, pair: W.Dropdown | None = None) -> PanelBox:
    """GMM component parameters over epochs and the share of imbalanced samples
    (shares the gap panel's pair selector when given one)."""
    own = pair is None
    pair = pair or W.Dropdown(options=list(result.pairs), description="pair")
    fig = FigureView(gmm_params_figure(result, pair.value))
    pair.observe(lambda _: fig.show(gmm_params_figure(result, pair.value)), names="value")
    children = [pair, fig] if own else [fig]
    if len(result.unimodal):
        children.append(FigureView(unimodal_accuracy_figure(result)))
    return PanelBox(children)
