"""How the JupyterLab panels put a figure on the page: one plotly.js per page, a fresh plot per figure.

A ``go.FigureWidget`` (plotly 7, anywidget) carries the whole plotly.js (~5 MB) in its widget
state, once per figure, and re-drawing it by replacing its traces and layout left old layout
parts (axis types, shapes, annotations) in the browser. A :class:`FigureView` instead is an
``ipywidgets.Output`` whose only output is the figure as a small ``text/html`` block: the
figure's JSON in a ``<script type="application/json">`` (data, never run) and a short script
that draws it with ``Plotly.newPlot`` once the plot is visible. A re-draw *replaces* that output,
so the browser draws a fresh plot from the new figure's full JSON every time -- nothing of the
previous figure survives.

plotly.js comes once per kernel and page: :func:`plotly_loader` is one ``anywidget`` model per
kernel, never displayed, whose module is the vendored *cartesian* build (1.3 MB,
:mod:`widgets.plotly_bundle`); the front end runs it when the model is created, while the kernel
still builds the panel, and it defines ``window.Plotly`` unless the page already has it. The
plotly mime extension of JupyterLab (the previous way) evaluated its full 4.8 MB plotly.js only on
the first plot of a page and then drew each figure three times (``react``, a ``redraw`` on update
and an offscreen ``toImage`` for a PNG copy): the first panel of a page took about 4 s. A figure
with traces the cartesian build cannot draw (3-D, maps) still goes out as a plotly mime bundle
(``application/vnd.plotly.v1+json``) for that extension. JupyterLab trusts the outputs of an
``Output`` widget, which is what lets the drawing script run.

Saved notebooks: showing a panel (:class:`StaticFallback`) writes two outputs, the live widget
and after it a ``text/html`` static copy of the figures it shows at that moment. JupyterLab draws
an output's widget view whenever the output has one, and a saved notebook reopened has no widget
model behind it ("Error displaying widget: model not found"; "Loading widget..." with no kernel), so
a copy inside the widget's own bundle would never be drawn there. The copy starts hidden, stays
hidden while the live panel shows, and otherwise shows itself in the panel's place, hiding the
widget's error line (:func:`static_html`); an HTML report (``workbench report``) keeps the copy and
leaves the widget output out. The copy needs plotly.js: the vendored cartesian build goes, as inert
text, into the first copy a kernel writes (the full 4.8 MB build only when a figure needs a
non-cartesian trace) and runs only when a copy is shown on a page without plotly.js. Nothing is
fetched. An untrusted notebook (JupyterLab sanitizes its HTML, so no script runs) shows the copy's
note saying so, not the figures.

Example
-------
>>> import plotly.graph_objects as go
>>> view = FigureView(go.Figure(go.Bar(x=["a"], y=[1])))
>>> view.show(go.Figure(go.Scatter(x=[1], y=[2])))
>>> view.spec()["data"][0]["type"]
'scatter'
>>> sorted(view.bundle())
['text/html', 'text/plain']
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
DEFAULT_HEIGHT = 360  # px, as the plotly mime extension draws a figure without a height
# which plotly.js builds this kernel has already inlined into a fallback ("cartesian", "full")
_PLOTLYJS_SENT: set[str] = set()


def figure_spec(fig: go.Figure) -> dict[str, Any]:
    """``fig``'s full JSON as plotly.js reads it (``data``, ``layout``, ``config``).

    Examples
    --------
    >>> import plotly.graph_objects as go
    >>> sorted(figure_spec(go.Figure(layout={"title": "t"})))
    ['config', 'data', 'layout']
    """
    spec = json.loads(pio.to_json(fig, validate=False, remove_uids=True))
    spec.setdefault("layout", {})
    spec["config"] = {"displaylogo": False}
    return spec


def figure_bundle(fig: go.Figure) -> dict[str, Any]:
    """``fig`` as a plotly mime bundle: its full JSON under the plotly mime type, and a text line.

    Examples
    --------
    >>> import plotly.graph_objects as go
    >>> sorted(figure_bundle(go.Figure(layout={"title": "t"})))
    ['application/vnd.plotly.v1+json', 'text/plain']
    """
    return {PLOTLY_MIME: figure_spec(fig), "text/plain": _text(fig)}


def _text(fig: go.Figure) -> str:
    title = (fig.layout.title.text or "plotly figure") if fig.layout.title else "plotly figure"
    return f"<figure: {html.unescape(str(title))}>"


def _json_in_html(value: Any) -> str:
    """JSON that is inert inside an HTML ``<script>`` element: ``<``, ``>``, ``&`` as ``\\u`` escapes."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for char, code in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                       ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, code)
    return text


# draws the figure of the JSON element before the plot div once the div is visible (a hidden tab
# is drawn when it is first shown), resizes it with its container, and waits for plotly.js when the
# loader has not run yet; the JSON is parsed, never evaluated
_DRAW_JS = """(function (s) {
  var el = s.previousElementSibling, spec = JSON.parse(el.previousElementSibling.textContent);
  var drawn = false, waiting = false;
  function draw() {
    if (!el.isConnected || el.offsetWidth === 0) return;
    if (!window.Plotly) {
      if (!waiting) { waiting = true; (window.__workbenchPlotlyWaiting = window.__workbenchPlotlyWaiting || []).push(
        function () { waiting = false; draw(); }); }
      return;
    }
    if (drawn) { window.Plotly.Plots.resize(el); return; }
    drawn = true;
    window.Plotly.newPlot(el, spec.data, spec.layout, spec.config);
  }
  new ResizeObserver(draw).observe(el);
})(document.currentScript);"""


def figure_html(fig: go.Figure) -> str:
    """``fig`` as the HTML block a :class:`FigureView` shows (its JSON, a plot div, the drawing script).

    Examples
    --------
    >>> import plotly.graph_objects as go
    >>> "<img" in figure_html(go.Figure(layout={"title": "<img src=x>"}))
    False
    """
    spec = figure_spec(fig)
    # the plot div's height is the figure's own (plotly's autosize reads it), else the mime extension's default
    height = int(spec["layout"].get("height") or DEFAULT_HEIGHT)
    return (f"<div class='workbench-figure'><script type='application/json'>{_json_in_html(spec)}</script>"
            f"<div class='workbench-plot' style='height:{height}px'></div><script>{_DRAW_JS}</script></div>")


def figure_spec_from_html(text: str) -> dict[str, Any]:
    """The figure JSON inside a :func:`figure_html` block (for tests and :meth:`FigureView.spec`)."""
    start = text.index("<script type='application/json'>") + len("<script type='application/json'>")
    return json.loads(text[start:text.index("</script>", start)])


_LOADER: Any = None


def plotly_loader():
    """The widget model that puts plotly.js on the page: one per kernel, never displayed.

    An ``anywidget`` model whose module is the vendored cartesian plotly.js: the front end runs a
    model's module when the model is *created* (its ``comm_open``), so plotly.js is evaluated while
    the kernel is still building the rest of the panel, and a page reopened on a live kernel gets it
    again with the kernel's other models. It defines ``window.Plotly`` unless the page already has
    one (a report, a static copy), then draws the figures that were waiting for it. Importing
    :mod:`widgets` in a kernel creates it (see that package's docstring).
    """
    global _LOADER
    if _LOADER is None:
        import anywidget
        import traitlets

        path = cartesian_file()
        if path.is_file():
            source = path.read_text(encoding="utf-8")
        else:
            from plotly.offline import get_plotlyjs

            source = get_plotlyjs()
        esm = ("if (typeof window.Plotly === 'undefined') {\n" + source + "\n}\n"
               "const waiting = window.__workbenchPlotlyWaiting || [];\n"
               "window.__workbenchPlotlyWaiting = [];\n"
               "waiting.forEach((draw) => draw());\n"
               "export default {};\n")

        class PlotlyLoader(anywidget.AnyWidget):
            _esm = traitlets.Unicode(esm).tag(sync=True)

        _LOADER = PlotlyLoader()
    return _LOADER


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
        plotly_loader()  # before this view's model: the page starts on plotly.js while the kernel builds
        super().__init__(**kwargs)
        self.figure: go.Figure | None = None
        if fig is not None:
            self.show(fig)

    def show(self, fig: go.Figure) -> None:
        """Show ``fig`` instead of the current figure (the Output's content is replaced, not patched)."""
        self.figure = fig
        if unsupported_traces(fig, "cartesian"):  # 3-D, maps: the plotly mime extension's full build draws it
            data = figure_bundle(fig)
        else:
            data = {"text/html": figure_html(fig), "text/plain": _text(fig)}
        # set outputs directly (not ``with self: display(...)``): works the same inside and outside a
        # kernel, and the front end gets one message with the complete new figure
        self.outputs = ({"output_type": "display_data", "data": data, "metadata": {}},)

    def bundle(self) -> dict[str, Any]:
        """The display bundle shown now (``{}`` when empty)."""
        return dict(self.outputs[0]["data"]) if self.outputs else {}

    def spec(self) -> dict[str, Any]:
        """The figure JSON the browser is given now (``{}`` when empty)."""
        data = self.bundle()
        if PLOTLY_MIME in data:
            return data[PLOTLY_MIME]
        return figure_spec_from_html(data["text/html"]) if "text/html" in data else {}


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
    """plotly.js as inert text for a static copy, the first time this kernel needs that build; else ''.

    Inert (``type='text/plain'``): a live page, which has the loader's plotly.js, never parses it;
    a static copy that is shown runs it (:data:`_STATIC_JS`) unless the page has plotly.js already.
    """
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
    return f"<script type='text/plain' class='workbench-plotlyjs' data-build='{build}'>{source}</script>"


# A static copy is its own output, after the live panel's; it starts hidden and shows itself where
# that panel cannot be drawn. Live means the panel's own view (its DOM class names its model) is on
# the page, whatever the front end; JupyterLab reopened on a saved notebook instead says "Error
# displaying widget: model not found" in the output before the copy (or stays on "Loading
# widget..." without a kernel), and an HTML report has no widget output at all. Shown, it runs the
# page's inert plotly.js (the full build where there is one) unless plotly.js is defined, draws the
# figures waiting for it (each draws once visible) and hides JupyterLab's error line.
_STATIC_JS = """(function (s) {
  var copy = s.parentElement, panel = copy.dataset.panel, start = Date.now();
  var output = copy.closest('.jp-OutputArea-child'), widget = output && output.previousElementSibling;
  function state() {
    if (document.querySelector('.workbench-panel-' + panel)) return 'live';
    var text = widget ? widget.textContent : '';
    if (/Error displaying widget/.test(text)) return 'dead-widget';
    if (Date.now() - start < 3000) return 'wait';
    return /Loading widget/.test(text) ? 'dead-widget' : 'dead';
  }
  function show(hideWidget) {
    if (!window.Plotly) {
      var src = null;
      document.querySelectorAll('script.workbench-plotlyjs').forEach(function (el) {
        if (!src || el.dataset.build === 'full') src = el;
      });
      if (src) { var js = document.createElement('script'); js.textContent = src.textContent; document.head.appendChild(js); }
      // the output that carried plotly.js (the kernel's first copy) is gone: say why nothing draws
      else copy.querySelectorAll('.workbench-no-plotlyjs').forEach(function (el) { el.style.display = ''; });
    }
    var waiting = window.__workbenchPlotlyWaiting || [];
    window.__workbenchPlotlyWaiting = [];
    waiting.forEach(function (draw) { draw(); });
    if (hideWidget) widget.style.display = 'none';
    copy.querySelectorAll('.workbench-untrusted').forEach(function (el) { el.remove(); });
    copy.style.display = '';
  }
  var timer = setInterval(function () {
    var now = state();
    if (now === 'wait') return;
    clearInterval(timer);
    if (now !== 'live') show(now === 'dead-widget');
  }, 100);
})(document.currentScript);"""

STATIC_NOTE = ("Static copy of this panel's figures as they were shown; its controls need the kernel "
               "(run the cell again).")
NO_PLOTLYJS_NOTE = ("plotly.js is not on this page (it was saved with the kernel's first panel output, "
                    "since cleared): run the cell again to draw these figures.")
# shown only where the copy's script cannot run (JupyterLab sanitizes an untrusted notebook's HTML)
UNTRUSTED_NOTE = "No figures below? They need this notebook's scripts: trust the notebook (command: Trust Notebook)."


def static_html(widget: w.Widget) -> str:
    """The figures ``widget`` shows now, as a self-revealing static copy (see :data:`_STATIC_JS`).

    plotly.js goes, inert, into the first copy of a kernel. Each figure is a :func:`figure_html`
    block, drawn once the copy is shown.

    Examples
    --------
    >>> import plotly.graph_objects as go
    >>> static_html(PanelBox([FigureView(go.Figure(go.Bar(y=[1])))])).count("workbench-plot'")
    1
    """
    figures = [v.figure for v in views(widget) if v.figure is not None]
    parts = [_plotlyjs_for(figures), f"<p class='workbench-static-note'><i>{html.escape(STATIC_NOTE)}</i> "
             f"<span class='workbench-untrusted'>{html.escape(UNTRUSTED_NOTE)}</span></p>",
             f"<p class='workbench-no-plotlyjs' style='display:none'><b>{html.escape(NO_PLOTLYJS_NOTE)}</b></p>"]
    parts += [figure_html(fig) for fig in figures]
    return (f"<div class='workbench-static-panel' data-panel='{widget.model_id}' style='display:none'>"
            + "".join(parts) + f"<script>{_STATIC_JS}</script></div>")


class StaticFallback:
    """Mixin for a panel widget: shown, it outputs the live widget, then a static copy of its figures.

    JupyterLab draws the widget view of an output whenever it has one, and a saved notebook reopened
    has no widget model behind it ("Error displaying widget: model not found"): a ``text/html``
    copy *inside* the widget's bundle is never drawn there. So the copy is a second output that
    hides itself while the live panel shows and takes its place where it cannot
    (:func:`static_html`); ``workbench report`` keeps the copy and leaves the widget output out.
    """

    def _ipython_display_(self) -> None:
        from IPython.display import publish_display_data

        data = super()._repr_mimebundle_()  # type: ignore[misc]
        data, metadata = data if isinstance(data, tuple) else (data, {})
        # what a front end without the widget (an untrusted notebook, a console) prints: not the widget repr
        data["text/plain"] = f"{type(self).__name__}: a live panel; run the cell in a trusted notebook to use it"
        publish_display_data(data, metadata)
        publish_display_data({"text/html": static_html(self), "text/plain": STATIC_NOTE})


class PanelBox(StaticFallback, w.VBox):
    """A ``VBox`` whose saved output keeps a static copy of its figures (see :class:`StaticFallback`).

    Examples
    --------
    >>> import plotly.graph_objects as go
    >>> "workbench-panel" in PanelBox([FigureView(go.Figure())])._dom_classes
    True
    """

    def __new__(cls, *args: Any, **kwargs: Any):
        # before anything of the panel is built (its results read, its figures made): the page evaluates
        # plotly.js while the kernel works, instead of after the panel's first figure
        plotly_loader()
        return super().__new__(cls, *args, **kwargs)

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # the static copy's script tells that this panel's live view is on the page by its model's class
        self.add_class("workbench-panel")
        self.add_class(f"workbench-panel-{self.model_id}")
