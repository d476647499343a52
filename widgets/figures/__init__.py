"""Figure builders: pure functions from a workbench result to a plotly ``go.Figure``.

The only place figures are drawn; panels, the dashboard and HTML reports all call these.
:data:`RESULT_FIGURES` (from :mod:`widgets.registry`) maps a result *class*
(``"module:ClassName"``) to a ``"module:function"`` that returns the list of figures the report
shows for it, so a result saved under any name gets its figures.
"""

from __future__ import annotations

from widgets.registry import RESULT_FIGURES, figures_builder
from widgets.text import escape_figure

__all__ = ["RESULT_FIGURES", "figures_for_result"]


def figures_for_result(name: str, result) -> list:
    """The report figures for a saved result (looked up by its class), or ``[]`` when none is registered.

    ``name`` (the result's name in the run) is not used for the lookup; it is kept so callers can
    pass what they have.

    Examples
    --------
    >>> import pandas as pd
    >>> from dataclasses import dataclass
    >>> from workbench.store.results import Result
    >>> @dataclass
    ... class R(Result):
    ...     table: pd.DataFrame
    >>> figures_for_result("anything", R(pd.DataFrame({"x": [1]})))
    []
    """
    builder = figures_builder(result)
    if builder is None:
        return []
    # escaped here too: builders registered by other packages may not escape their text
    return [escape_figure(fig) for fig in builder(result)]
