"""How the JupyterLab panels put a figure on the page: a plain plotly mime bundle inside an Output.

A ``go.FigureWidget`` (plotly 7, anywidget) carries the whole plotly.js (~5 MB) in its widget
state, once per figure, and re-drawing it by replacing its traces and layout left old layout
parts (axis types, shapes, annotations) in the browser. A :class:`FigureView` instead holds a
``ipywidgets.Output`` whose only output is the figure as an ``application/vnd.plotly.v1+json``
bundle: JupyterLab draws it with the plotly mime extension, whose plotly.js is loaded once per
page, and a re-draw *replaces* that output, so the browser draws a fresh plot from the new
figure's full JSON every time -- nothing of the previous figure survives.

Saved notebooks: a panel's own display bundle (:class:`StaticFallback`) carries, next to the
widget view, a ``text/html`` copy of the figures it shows at that moment, so a notebook viewed
where the widget model is gone (nbconvert, nbviewer, a saved file) still shows the figures. The
HTML needs plotly.js; the vendored cartesian build (1.3 MB, :mod:`widgets.plotly_bundle`) is
inlined into the first fallback a kernel writes and reused by the later ones on the same page
(the full 4.8 MB build only when a figure needs a non-cartesian trace). Nothing is fetched.

Example
-------
>>> import plotly.graph_objects as go
>>> view = FigureView(go.Figure(go.Bar(x=["a"], y=[1])))
>>> view.show(go.Figure(go.Scatter(x=[1], y=[2])))
>>> view.bundle()["application/vnd.plotly.v1+json"]["data"][0]["type"]
'scatter'
"""

from __future__ import annotations

import html
import json
from typing import Any

import ipywidgets as w
import plotly.graph_objects as go
import plotly.io as pio

from widgets.plotly_bundle import cartesian_file, unsupported_traces

PLOTLY_MIME = "application/vnd.plotly.v1+json"
# which plotly.js builds this kernel has already inlined into a fallback ("cartesian", "full")
_PLOTLYJS_SENT: set[str] = set()


def figure_bundle(fig: go.Figure) -> dict[str, Any]:
    """``fig`` as a display bundle: its full JSON under the plotly mime type, and a text line.

    Examples
    --------
    >>> import plotly.graph_objects as go
    >>> sorted(figure_bundle(go.Figure(layout={"title": "t"})))
    ['application/vnd.plotly.v1+json', 'text/plain']
    """
    spec = json.loads(pio.to_json(fig, validate=False, remove_uids=True))
    spec.setdefault("layout", {})
    spec["config"] = {"displaylogo": False}
    title = (fig.layout.title.text or "plotly figure") if fig.layout.title else "plotly figure"
    return {PLOTLY_MIME: spec, "text/plain": f"<figure: {html.unescape(str(title))}>"}


class FigureView(w.Output):
    """One figure on the page; :meth:`show` replaces it (the browser draws the new one from scratch).

    Parameters
    ----------
    fig : go.Figure, optional
        The figure shown first.

    Attributes
    ----------
    figure : go.Figure or None
        The figure shown now.
    """

    def __init__(self, fig: go.Figure | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.figure: go.Figure | None = None
        if fig is not None:
            self.show(fig)

    def show(self, fig: go.Figure) -> None:
        """Show ``fig`` instead of the current figure (the Output's content is replaced, not patched)."""
        self.figure = fig
        # set outputs directly (not ``with self: display(...)``): works the same inside and outside a
        # kernel, and the front end gets one message with the complete new figure
        self.outputs = ({"output_type": "display_data", "data": figure_bundle(fig), "metadata": {}},)

    def bundle(self) -> dict[str, Any]:
        """The display bundle shown now (``{}`` when empty)."""
        return dict(self.outputs[0]["data"]) if self.outputs else {}


def views(widget: w.Widget) -> list[FigureView]:
    """Every :class:`FigureView` inside ``widget`` (depth first, tabs and boxes included).

    Examples
    --------
    >>> import ipywidgets as w
    >>> len(views(w.VBox([FigureView(), w.Tab(children=[FigureView()])])))
    2
    """
    found = [widget] if isinstance(widget, FigureView) else []
    for child in getattr(widget, "children", ()):
        found += views(child)
    return found


def _plotlyjs_for(figures: list[go.Figure]) -> str:
    """The ``<script>`` that defines plotly.js, the first time this kernel needs that build; else ''."""
    build = "full" if any(unsupported_traces(f, "cartesian") for f in figures) else "cartesian"
    if build in _PLOTLYJS_SENT or "full" in _PLOTLYJS_SENT or not figures:
        return ""
    path = cartesian_file()
    if build == "cartesian" and path.is_file():
        source = path.read_text(encoding="utf-8")
    else:
        from plotly.offline import get_plotlyjs

        source, build = get_plotlyjs(), "full"
    _PLOTLYJS_SENT.add(build)
    # guarded: a page that already has plotly.js (a report, a second copy) keeps its own
    return f"<script type='text/javascript'>if (typeof window.Plotly === 'undefined') {{\n{source}\n}}</script>"


def static_html(widget: w.Widget) -> str:
    """The figures ``widget`` shows now, as HTML (plotly.js inlined into the first copy of a kernel).

    Examples
    --------
    >>> import plotly.graph_objects as go
    >>> static_html(PanelBox([FigureView(go.Figure(go.Bar(y=[1])))])).count("Plotly.newPlot")
    1
    """
    figures = [v.figure for v in views(widget) if v.figure is not None]
    parts = [_plotlyjs_for(figures)]
    parts += [pio.to_html(fig, include_plotlyjs=False, full_html=False, config={"displaylogo": False})
              for fig in figures]
    return "<div class='workbench-static-panel'>" + "".join(parts) + "</div>"


class StaticFallback:
    """Mixin for a panel widget: its display bundle adds a ``text/html`` copy of its figures.

    A front end with the widget manager draws the live widget view; one without (a saved notebook
    rendered by nbconvert or nbviewer) falls back to the HTML.
    """

    def _repr_mimebundle_(self, **kwargs: Any):
        data = super()._repr_mimebundle_(**kwargs)  # type: ignore[misc]
        if isinstance(data, tuple):  # (data, metadata)
            data, metadata = data
            return {**data, "text/html": static_html(self)}, metadata  # type: ignore[arg-type]
        return {**(data or {}), "text/html": static_html(self)}  # type: ignore[arg-type]


class PanelBox(StaticFallback, w.VBox):
    """A ``VBox`` whose saved output keeps a static copy of its figures (see :class:`StaticFallback`).

    Examples
    --------
    >>> import plotly.graph_objects as go
    >>> sorted(PanelBox([FigureView(go.Figure())])._repr_mimebundle_())  # doctest: +NORMALIZE_WHITESPACE
    ['application/vnd.jupyter.widget-view+json', 'text/html', 'text/plain']
    """
