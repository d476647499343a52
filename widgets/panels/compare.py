"""JupyterLab panel for a :class:`workbench.analyses.compare.Comparison`: its summary table and figure.

The table is the result's ``summary`` as escaped HTML; the figure is
:func:`widgets.figures.compare.comparison_figure`. The panel computes nothing.

Example
-------
>>> comparison_panel(cmp)  # doctest: +SKIP
"""

from __future__ import annotations

import ipywidgets as w

from widgets.figures.compare import comparison_figure
from widgets.panels.view import FigureView, PanelBox


def comparison_panel(result) -> PanelBox:
    """The per-configuration summary (escaped HTML table) above the comparison figure."""
    table = w.HTML(result.summary.to_html(escape=True, index=False, float_format=lambda v: f"{v:.4g}"))
    return PanelBox([table, FigureView(comparison_figure(result))])
