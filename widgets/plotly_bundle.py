"""Which plotly.js the served dashboard sends to the browser.

Panel ships the full plotly.js 3.1.0 (4.8 MB minified). On a cold browser, parsing and running
it took 1.4 s of the dashboard's 3.3 s first page on the 2-core CI machine -- longer than the
rest of Bokeh and Panel together. Every figure the workbench draws uses cartesian traces
(scatter, bar, histogram, heatmap), so by default the server sends plotly.js's official
*cartesian* build of the same version (1.3 MB, vendored in ``widgets/static`` with its MIT
licence) instead.

Figures with other trace types (a user's 3-D scatter, say) cannot be drawn by that build; the
dashboard shows a message naming them instead of an empty frame, and ``workbench serve
--plotly full`` sends Panel's full build. Tables (the fallback view of results without
registered figures) are shown as HTML tables, which need no plotly at all.

This only changes what a *served* page loads: JupyterLab panels and HTML reports keep the
full plotly.js that the plotly package embeds.

Example
-------
>>> from widgets.plotly_bundle import unsupported_traces
>>> import plotly.graph_objects as go
>>> unsupported_traces(go.Figure(go.Scatter3d(x=[1], y=[1], z=[1])), "cartesian")
['scatter3d']
>>> unsupported_traces(go.Figure(go.Scatter3d(x=[1], y=[1], z=[1])), "full")
[]
"""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_ROUTE = "workbench-static"
PLOTLY_VERSION = "3.1.0"  # Panel 1.9's plotly.js; the vendored build must match it
BUNDLES = ("cartesian", "full")
_PANEL_DEFAULT: dict[str, list[str]] = {}  # Panel's own plotly.js URL, kept to switch back
# trace modules of plotly.js-cartesian-dist-min (its README)
CARTESIAN_TRACES = frozenset({
    "bar", "box", "contour", "heatmap", "histogram", "histogram2d", "histogram2dcontour", "image", "pie",
    "scatter", "scatterternary", "violin",
})


def cartesian_file() -> Path:
    return STATIC_DIR / f"plotly-cartesian-{PLOTLY_VERSION}.min.js"


def use_bundle(bundle: str) -> dict[str, str]:
    """Make served pages load ``bundle`` (``"cartesian"`` or ``"full"``); returns the extra
    static routes ``pn.serve`` must serve (``static_dirs``).

    Affects every Panel page this process serves from now on (Panel resolves a model's
    JavaScript from its class), which is why only :func:`widgets.dashboard.serve` calls it.
    """
    from panel.models.plotly import PLOTLY_VERSION as PANEL_PLOTLY
    from panel.models.plotly import PlotlyPlot

    if bundle not in BUNDLES:
        raise ValueError(f"unknown plotly bundle {bundle!r}; choose one of {BUNDLES}")
    _PANEL_DEFAULT.setdefault("raw", list(PlotlyPlot.__javascript_raw__))
    if bundle == "full" or PANEL_PLOTLY != PLOTLY_VERSION or not cartesian_file().is_file():
        # a Panel with another plotly.js would meet a build it was not written for: keep its own
        PlotlyPlot.__javascript_raw__ = list(_PANEL_DEFAULT["raw"])
        return {}
    PlotlyPlot.__javascript_raw__ = [f"{STATIC_ROUTE}/{cartesian_file().name}"]
    return {STATIC_ROUTE: str(STATIC_DIR)}


def served_bundle() -> str:
    """The bundle served pages load now (``"full"`` unless :func:`use_bundle` chose cartesian)."""
    from panel.models.plotly import PlotlyPlot

    return "cartesian" if any(STATIC_ROUTE in url for url in PlotlyPlot.__javascript_raw__) else "full"


def unsupported_traces(fig: go.Figure, bundle: str) -> list[str]:
    """Trace types of ``fig`` that ``bundle`` cannot draw (sorted; empty when all can be drawn)."""
    if bundle == "full":
        return []
    return sorted({trace.type for trace in fig.data} - CARTESIAN_TRACES)
