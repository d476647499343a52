"""JupyterLab panel for a :class:`workbench.analyses.compare.Comparison`: its summary table and figures.

The table is the result's ``summary`` as escaped HTML; below it, a selector over the comparison's
figures (:func:`widgets.figures.compare.report_figures`: per metric, the configurations' means and
their paired differences). The panel computes nothing.

Example
-------
>>> comparison_panel(cmp)  # doctest: +SKIP
"""

from __future__ import annotations

import ipywidgets as w

from widgets.panels.base import ResultPanel
from widgets.panels.view import PanelBox


def comparison_panel(result) -> PanelBox:
    """The per-configuration summary (escaped HTML table) above the comparison's figures, one at a time."""
    table = w.HTML(result.summary.to_html(escape=True, index=False, float_format=lambda v: f"{v:.4g}"))
    return PanelBox([table, ResultPanel(result, "comparison")])
