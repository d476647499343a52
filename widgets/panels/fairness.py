"""JupyterLab panel for a :class:`workbench.analyses.fairness.FairnessResult`.

A group-attribute selector and a metric selector re-draw the per-group bars (with bootstrap
error bars), the disparity summary and the modality-by-group view from the result; the panel
computes nothing.

Example
-------
>>> fairness_panel(result)  # doctest: +SKIP
"""

from __future__ import annotations

import ipywidgets as w

from widgets.figures.fairness import disparity_figure, group_metric_figure, modality_by_group_figure
from widgets.panels.view import FigureView, PanelBox


def fairness_panel(result) -> PanelBox:
    """Selectors (attribute, metric, modality metric) over three linked figures."""
    metrics = [m for m in result.metrics if m != "n"]
    attr = w.Dropdown(options=result.attributes, description="group")
    metric = w.Dropdown(options=metrics, value="accuracy" if "accuracy" in metrics else metrics[0], description="metric")
    mod_metrics = list(dict.fromkeys(result.modality_by_group["metric"])) or ["accuracy"]
    mod_metric = w.Dropdown(options=mod_metrics, description="modality")
    bars = FigureView(group_metric_figure(result, metric.value, attr.value))
    disp = FigureView(disparity_figure(result, attr.value))
    mods = FigureView(modality_by_group_figure(result, mod_metric.value, attr.value))

    def refresh(_=None) -> None:
        bars.show(group_metric_figure(result, metric.value, attr.value))
        disp.show(disparity_figure(result, attr.value))
        mods.show(modality_by_group_figure(result, mod_metric.value, attr.value))

    for control in (attr, metric, mod_metric):
        control.observe(refresh, names="value")
    return PanelBox([w.HBox([attr, metric, mod_metric]), bars, disp, mods])
