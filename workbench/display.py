"""The one edge from the core to the UI: show a result or a run in a notebook.

:func:`show` (and so ``_ipython_display_`` of :class:`workbench.store.results.Result` and
:class:`workbench.store.runs.Run`) imports :mod:`widgets.registry` only when called, finds the
panel registered for the object's class (walking its MRO) and displays it. When the UI is not
installed (the import fails) or nothing is registered, it displays the object's tables as escaped
HTML instead, so a headless install still shows every result.

Examples
--------
>>> import pandas as pd
>>> from dataclasses import dataclass
>>> from workbench.store.results import Result
>>> @dataclass
... class Scores(Result):
...     scores: pd.DataFrame
>>> print(tables_html(Scores(pd.DataFrame({"m": ["<a>"]}))))  # doctest: +ELLIPSIS
<h4>scores</h4><table ...<td>&lt;a&gt;</td>...
"""

from __future__ import annotations

import dataclasses
import html
import importlib

import pandas as pd

MAX_ROWS = 50


def tables(obj: object) -> dict[str, pd.DataFrame]:
    """The DataFrames an object holds: its DataFrame fields (dataclasses), else its ``to_frame()``."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        found = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
        frames = {name: value for name, value in found.items() if isinstance(value, pd.DataFrame)}
        if frames:
            return frames
    to_frame = getattr(obj, "to_frame", None)
    return {"table": to_frame()} if callable(to_frame) else {}


def tables_html(obj: object, *, max_rows: int = MAX_ROWS) -> str:
    """The object's tables (first ``max_rows`` rows each) as HTML; every cell and name is escaped."""
    parts = []
    for name, frame in tables(obj).items():
        shown = f" (first {max_rows} of {len(frame)} rows)" if len(frame) > max_rows else ""
        parts.append(f"<h4>{html.escape(name)}{html.escape(shown)}</h4>"
                     + frame.head(max_rows).to_html(escape=True, max_cols=40))
    return "".join(parts) or f"<pre>{html.escape(repr(obj))}</pre>"


#: The UI package's registry, found by name: the core depends on no UI module (the UI registers
#: itself there), so the import graph has no core -> UI edge and no cycle through this hook.
UI_REGISTRY = "widgets.registry"


def _panel(obj: object):
    """The registered panel for ``obj``, or ``None`` when the UI is not installed or none is registered."""
    try:
        builder = importlib.import_module(UI_REGISTRY).panel_builder(obj)
        return None if builder is None else builder(obj)
    except ImportError:  # the UI (widgets, ipywidgets, plotly) is not installed
        return None


def show(obj: object) -> None:
    """Display ``obj``'s registered panel, or its tables as escaped HTML when there is none.

    Parameters
    ----------
    obj : Result or Run
        Anything; the panel is looked up by its class (:func:`widgets.registry.register_panel`).

    Examples
    --------
    >>> from workbench import load_run
    >>> show(load_run("runs/<run id>"))  # doctest: +SKIP
    """
    from IPython.display import HTML, display

    panel = _panel(obj)
    display(panel if panel is not None else HTML(tables_html(obj)))
