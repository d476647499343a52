"""The one escape helper for every text the UI shows that came from a run, a card, a data file or a user.

Run ids, a failed run's error, config values, dataset, modality, group, strategy and result names
all reach the page through here: :func:`escape` for HTML we write ourselves, :func:`escape_figure`
(with :func:`escape_plotly`) for plotly figures. Plotly renders a subset of HTML in titles, axis
and legend labels, category ticks, hover labels and table cells (``<a href>``, ``<span style>``,
``<br>``, ...), so text in those places is escaped too. Plotly decodes only a few entities
(``&lt;``, ``&gt;``, ``&amp;`` and some symbols), not ``&quot;`` or ``&#x27;``, so plotly text
escapes ``&``, ``<`` and ``>`` only: the reader sees the original characters, quotes included,
and no tag can form (a quote outside a tag is plain text there).

:func:`escape` is idempotent (it unescapes before escaping), so a figure that passes through two
builders, or a text escaped twice on its way to the page, shows the same characters as once. The
price: a literal ``&lt;`` in a user's name is shown as ``<`` -- which is what plotly shows for
unescaped text anyway.

Examples
--------
>>> escape('<img src=x onerror="alert(1)">')
'&lt;img src=x onerror=&quot;alert(1)&quot;&gt;'
>>> escape(escape("a<b")) == escape("a<b")
True
>>> escape_plotly('say "<b>hi</b>"')
'say "&lt;b&gt;hi&lt;/b&gt;"'
"""

from __future__ import annotations

import functools
import html
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import plotly.graph_objects as go

F = TypeVar("F", bound=Callable[..., Any])

# trace properties that hold text plotly renders as (pseudo-)HTML; hovertemplate/texttemplate are
# ours (format strings with our own <br>/<extra> markup) and are left alone, user text enters them
# only through the escaped data they substitute
# customdata: hover templates (%{customdata[i]}) render its strings as HTML too
_TRACE_TEXT = ("name", "text", "hovertext", "labels", "customdata")
_TRACE_CATEGORIES = ("x", "y", "z")


def escape(value: object) -> str:
    """``value`` as text safe to place inside HTML (element content or a quoted attribute)."""
    return html.escape(html.unescape(str(value)), quote=True)


def escape_plotly(value: object) -> str:
    """``value`` as plotly text: ``&``, ``<``, ``>`` escaped (plotly shows ``&quot;`` literally), idempotent.

    Text that went through :func:`escape` first comes out the same as the original would.
    """
    return html.escape(html.unescape(str(value)), quote=False)


def _escape_array(values: Any) -> Any:
    """Escape the strings of a plotly data array (strings, tuples, lists, numpy or pandas); numbers pass."""
    if values is None or isinstance(values, (int, float)):
        return values
    if isinstance(values, str):
        return escape_plotly(values)
    if getattr(getattr(values, "dtype", None), "kind", "O") in "biufcmM":
        return values  # a numeric numpy/pandas array: nothing to escape, keep its dtype
    try:
        items = list(values)
    except TypeError:
        return values
    nested = (list, tuple, np.ndarray)  # rows of 2-D data (customdata) included
    if not any(isinstance(v, str) or isinstance(v, nested) for v in items):
        return values  # numeric data: leave the array (and its dtype) as it is
    return [_escape_array(v) if isinstance(v, nested) else escape_plotly(v) if isinstance(v, str) else v
            for v in items]


def _escape_title(obj: Any) -> None:
    title = getattr(obj, "title", None)
    if title is not None and getattr(title, "text", None):
        title.text = escape_plotly(title.text)


def _escape_lines(text: str) -> str:
    """Each ``<br>``-separated line escaped, the breaks kept (captions and wrapped tick labels); idempotent."""
    return "<br>".join(escape_plotly(line) for line in text.split("<br>"))


def escape_figure(fig: go.Figure) -> go.Figure:
    """Escape, in place, every text of ``fig`` that plotly would render as HTML; returns ``fig``.

    Covers the figure, axis, legend and colour-bar titles, annotations (subplot titles included),
    tick texts (each ``<br>``-separated line: builders wrap long names onto lines), trace names, texts and hover texts, string categories of ``x``/``y``/``z``, and the
    header and cells of tables.
    """
    layout = fig.layout
    _escape_title(layout)
    _escape_title(layout.legend)
    for ann in layout.annotations or ():
        if ann.text and ann.name == CAPTION_NAME:  # our own line breaks between escaped lines
            ann.text = _escape_lines(ann.text)
        elif ann.text:
            ann.text = escape_plotly(ann.text)
    # the raw property dicts (not to_plotly_json, which deep-copies the template and the data)
    for key in [k for k in layout._props if k.startswith(("xaxis", "yaxis"))]:
        axis = layout[key]
        _escape_title(axis)
        if axis.ticktext is not None:  # our own line breaks (wrapped names) between escaped lines
            axis.ticktext = [_escape_lines(v) if isinstance(v, str) else v for v in axis.ticktext]
        if axis.categoryarray is not None:
            axis.categoryarray = _escape_array(axis.categoryarray)
    for menu in layout.updatemenus or ():  # a dropdown's labels, and the titles and annotations it puts back
        for button in menu.buttons or ():
            button.label = escape_plotly(button.label) if button.label else button.label
            if button.args and len(button.args) > 1 and isinstance(button.args[1], dict):
                button.args = [button.args[0], _escaped_relayout(button.args[1]), *button.args[2:]]
    for trace in fig.data:
        props = trace._props
        for prop in _TRACE_TEXT + _TRACE_CATEGORIES:
            if prop in props and props[prop] is not None:
                trace[prop] = _escape_array(props[prop])
        if trace.type == "table":
            trace.header.values = _escape_array(trace.header.values)
            trace.cells.values = _escape_array(trace.cells.values)
        marker = props.get("marker") or {}
        if isinstance(marker.get("colorbar"), dict):
            _escape_title(trace.marker.colorbar)
        if "colorbar" in props:
            _escape_title(trace.colorbar)
    return fig


def _escaped_relayout(update: dict) -> dict:
    """A menu button's layout update with its title and annotation texts escaped (captions line by line)."""
    out = dict(update)
    for key in ("title.text", "title"):
        if isinstance(out.get(key), str):
            out[key] = escape_plotly(out[key])
    if isinstance(out.get("annotations"), list):
        out["annotations"] = [{**a, "text": (_escape_lines if a.get("name") == CAPTION_NAME else escape_plotly)(a["text"])}
                              if isinstance(a, dict) and isinstance(a.get("text"), str) else a
                              for a in out["annotations"]]
    return out


CAPTION_NAME = "caption"
CAPTION_WIDTH = 110  # characters per caption line (plotly does not wrap annotations)
_LINE_PX = 15


def add_caption(fig: go.Figure, text: str, *, width: int = CAPTION_WIDTH) -> go.Figure:
    """Put ``text`` under the plot area of ``fig`` as a left-aligned caption; returns ``fig``.

    The text is wrapped at ``width`` characters, the bottom margin grows to hold it, and the
    figure's height grows by as much, so the plot area keeps its size. The caption is an
    annotation named ``"caption"``; :func:`escape_figure` escapes each of its lines (so names
    from a run inside the text are shown as typed) and keeps the line breaks.

    Examples
    --------
    >>> import plotly.graph_objects as go
    >>> fig = add_caption(go.Figure(), "What is plotted. Higher is better.")
    >>> fig.layout.annotations[0].name, fig.layout.margin.b
    ('caption', 83)
    """
    import textwrap

    lines = [line for para in text.split("\n") for line in (textwrap.wrap(para, width) or [""])]
    legend_below = fig.layout.legend.orientation == "h" and (fig.layout.legend.y or 1) < 0
    # room for the x tick labels and title (and a horizontal legend drawn below the plot)
    gap = 60 + (45 if legend_below else 0)
    extra = gap + _LINE_PX * len(lines) + 8
    fig.add_annotation(text="<br>".join(lines), name=CAPTION_NAME, xref="paper", yref="paper", x=0, y=0,
                       xanchor="left", yanchor="top", yshift=-gap, showarrow=False, align="left",
                       font={"size": 11, "color": "#444"})
    margin_b = fig.layout.margin.b if fig.layout.margin.b is not None else 80
    fig.update_layout(margin={"b": max(margin_b, extra)}, height=(fig.layout.height or 450) + max(0, extra - 80))
    return fig


def caption_text(fig: go.Figure) -> str | None:
    """The caption of ``fig`` (its lines joined by spaces), or ``None`` when it has none."""
    for ann in fig.layout.annotations or ():
        if ann.name == CAPTION_NAME:
            return html.unescape(str(ann.text).replace("<br>", " "))
    return None


def escape_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with every text cell escaped (for plotly express, which pastes the
    values of ``color``/``facet`` columns into its hover templates, where we cannot escape them)."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or isinstance(out[col].dtype, (pd.StringDtype, pd.CategoricalDtype)):
            out[col] = out[col].map(lambda v: escape_plotly(v) if isinstance(v, str) else v)
    return out


TEMPLATE = "plotly_white"  # every figure of the workbench


def use_template(fig: go.Figure, name: str = TEMPLATE) -> go.Figure:
    """Put ``fig`` on the registered plotly template ``name``, in place; returns ``fig``.

    Assigned without validation, as plotly itself assigns its default template to every new figure
    (``BaseFigure._initialize_layout_template``): a registered template is valid, and validating it
    took 20-50 ms a figure, a third of a run panel's build time.

    Examples
    --------
    >>> use_template(go.Figure()).layout.template.layout.plot_bgcolor
    'white'
    """
    import plotly.io as pio

    layout = fig.layout
    layout._validate = False
    try:
        layout.template = pio.templates[name]
    finally:
        layout._validate = fig._validate
    return fig


def _finish(fig: go.Figure) -> go.Figure:
    return escape_figure(use_template(fig))


def escaped_figure(builder: F) -> F:
    """Decorator for a figure builder: its figure comes back on the workbench's template
    (:func:`use_template`) with :func:`escape_figure` applied (a builder that returns a list of
    figures gets each one finished)."""

    @functools.wraps(builder)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        out = builder(*args, **kwargs)
        if isinstance(out, go.Figure):
            return _finish(out)
        if isinstance(out, list):
            return [_finish(f) if isinstance(f, go.Figure) else f for f in out]
        return out

    return wrapper  # type: ignore[return-value]
