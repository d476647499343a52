"""Figures of any saved result: its registered figures by title, or its table when none is registered."""

from __future__ import annotations

import html

import pandas as pd
import plotly.graph_objects as go

from widgets.figures import figures_for_result
from widgets.text import escaped_figure

MAX_TABLE_ROWS = 200


@escaped_figure
def table_figure(frame: pd.DataFrame, *, title: str = "Table", max_rows: int = MAX_TABLE_ROWS) -> go.Figure:
    """A plotly table of the first ``max_rows`` rows of ``frame`` (floats to 4 significant digits).

    Examples
    --------
    >>> import pandas as pd
    >>> table_figure(pd.DataFrame({"a": [1.0, 2.0]})).data[0].type
    'table'
    """
    part = frame.head(max_rows)
    cells = [part[c].map(lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)) for c in part.columns]
    fig = go.Figure(go.Table(header={"values": [str(c) for c in part.columns]}, cells={"values": cells}))
    shown = f" (first {max_rows} of {len(frame)} rows)" if len(frame) > max_rows else ""
    fig.update_layout(title=title + shown)
    return fig


def table_frame(fig: go.Figure) -> pd.DataFrame:
    """The cells of a :func:`table_figure` back as a DataFrame of strings (for an HTML table).

    Examples
    --------
    >>> import pandas as pd
    >>> table_frame(table_figure(pd.DataFrame({"a": [1.0, 2.0]}))).to_dict("list")
    {'a': ['1', '2']}
    """
    table = fig.data[0]
    # the figure's text is escaped for plotly; the caller's HTML table escapes again, so unescape once
    return pd.DataFrame({html.unescape(str(h)): [html.unescape(str(v)) for v in col]
                         for h, col in zip(table.header.values, table.cells.values, strict=True)})


def figure_title(fig: go.Figure, default: str) -> str:
    text = fig.layout.title.text
    return str(text) if text else default


def result_figures(name: str, result) -> dict[str, go.Figure]:
    """Title -> figure for a saved result: its class's registered builders, else a table of ``to_frame()``.

    The builders are looked up by the result's class (:mod:`widgets.registry`), so a result saved
    under any name gets its figures; ``name`` is used only in titles, which are made unique so a
    selector can offer them all.

    Examples
    --------
    >>> import pandas as pd
    >>> from dataclasses import dataclass
    >>> from workbench.store.results import Result
    >>> @dataclass
    ... class R(Result):
    ...     table: pd.DataFrame
    >>> list(result_figures("unregistered", R(pd.DataFrame({"x": [1]}))))
    ['unregistered: table']
    """
    figures = figures_for_result(name, result)
    if not figures:
        return {f"{name}: table": table_figure(result.to_frame(), title=f"{name}: table")}
    out: dict[str, go.Figure] = {}
    for i, fig in enumerate(figures, start=1):
        title = figure_title(fig, f"{name}: figure {i}")
        out[title if title not in out else f"{title} ({i})"] = fig
    return out
