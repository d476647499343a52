"""Figure builders: pure functions from a workbench result to a plotly ``go.Figure``.

The only place figures are drawn; panels, the dashboard and HTML reports all call these.
:data:`RESULT_FIGURES` maps a saved result's name (``results/NAME`` in a run) to a
``"module:function"`` that returns the list of figures the report shows for it.
"""

from __future__ import annotations

import importlib

from widgets.text import escape_figure

# result name -> "module:function(result) -> list[go.Figure]"; each analysis adds its entry
RESULT_FIGURES: dict[str, str] = {}
RESULT_FIGURES["gap"] = "widgets.figures.gap:report_figures"
RESULT_FIGURES["fairness"] = "widgets.figures.fairness:report_figures"
RESULT_FIGURES["comparison"] = "widgets.figures.compare:report_figures"
RESULT_FIGURES["shapley"] = "widgets.figures.shapley:report_figures"


def figures_for_result(name: str, result) -> list:
    """The report figures for a saved result, or ``[]`` when no builder is registered."""
    target = RESULT_FIGURES.get(name)
    if target is None:
        return []
    module, fn = target.split(":")
    # escaped here too: builders registered by other packages may not escape their text
    return [escape_figure(fig) for fig in getattr(importlib.import_module(module), fn)(result)]
