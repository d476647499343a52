"""JupyterLab panel for a :class:`workbench.analyses.shapley.ShapleyResult`.

Controls: alpha (intervals are recomputed by the result's
:meth:`~workbench.analyses.shapley.ShapleyResult.intervals_for_alpha` from the stored calibration
values), the test sample shown, and the split of the coalition heat map. The panel computes no
statistics, and imports no analysis module (which would bring the trainer in).

Example
-------
>>> from widgets.panels.shapley import shapley_panel   # doctest: +SKIP
>>> shapley_panel(result)                               # doctest: +SKIP
"""

from __future__ import annotations

import ipywidgets as W

from widgets.figures.shapley import (
    coalition_heatmap,
    forest_figure,
    sample_forest_figure,
    selection_figure,
)
from widgets.panels.view import FigureView, PanelBox
from widgets.text import escape


def _redraw(out: FigureView, fig) -> None:
    out.show(fig)


def shapley_panel(result) -> PanelBox:
    """Forest plots, coalition heat map and selection curve with alpha / sample / split controls.

    ``result`` is a :class:`workbench.analyses.shapley.ShapleyResult`.
    """
    samples = sorted(result.values.loc[result.values["split"] == "test", "sample"].unique().tolist())
    alpha = W.FloatSlider(value=result.alpha, min=0.01, max=0.5, step=0.01, description="alpha")
    bonf = W.Checkbox(value=bool(result.bonferroni), description="Bonferroni")
    sample = W.Dropdown(options=samples, value=samples[0] if samples else None, description="test sample")
    split = W.ToggleButtons(options=["test", "calib"], value="test", description="coalitions")
    outs = {k: FigureView() for k in ("forest", "sample", "heat", "select")}

    def draw_forest(*_):
        table = result.intervals_for_alpha(alpha.value, bonferroni=bonf.value)
        _redraw(outs["forest"], forest_figure(table, title=f"Shapley intervals, alpha = {alpha.value:.2f}"))

    def draw_sample(*_):
        if sample.value is not None:
            _redraw(outs["sample"], sample_forest_figure(result.values, sample.value))

    def draw_heat(*_):
        _redraw(outs["heat"], coalition_heatmap(result.coalitions, list(result.modality_names), split=split.value))

    alpha.observe(draw_forest, "value")
    bonf.observe(draw_forest, "value")
    sample.observe(draw_sample, "value")
    split.observe(draw_heat, "value")
    draw_forest(), draw_sample(), draw_heat()
    _redraw(outs["select"], selection_figure(result.selection))
    header = W.HTML(f"<b>Conformal Shapley intervals</b>: {escape(result.dataset)}, {escape(result.value_method)} "
                    f"values, {escape(result.n_calib)} calibration samples, estimator {escape(result.estimator)}")
    tabs = W.Tab(children=[W.VBox([W.HBox([alpha, bonf]), outs["forest"]]), W.VBox([sample, outs["sample"]]),
                           W.VBox([split, outs["heat"]]), outs["select"]])
    for i, name in enumerate(["Intervals", "Sample", "Coalitions", "Selection"]):
        tabs.set_title(i, name)
    return PanelBox([header, tabs])
