"""The UI layer: figure builders (result -> plotly figure), JupyterLab panels and the Panel
dashboard. It reads workbench results; it never trains or computes statistics itself.

Imported inside a running Jupyter kernel, it creates the plotly.js loader at once
(:func:`widgets.panels.view.plotly_loader`): the page then evaluates plotly.js (~0.35 s of a
JupyterLab page's main thread for the 1.3 MB build) during the import cell instead of at the
first panel, which otherwise waits for it. A plain Python process (a script, the CLI, the served
dashboard) has no kernel and creates nothing.
"""

import sys


def _in_a_kernel() -> bool:
    """Whether a Jupyter kernel runs this process (found without importing IPython where nothing has)."""
    ipython = sys.modules.get("IPython")
    return getattr(ipython.get_ipython() if ipython is not None else None, "kernel", None) is not None


if _in_a_kernel():
    from widgets.panels.view import plotly_loader

    plotly_loader()
