"""The UI layer: figure builders (result -> plotly figure), JupyterLab panels and the Panel
dashboard. It reads workbench results; it never trains or computes statistics itself.

Imported inside a running Jupyter kernel, it puts plotly.js on the page at once
(:func:`widgets.panels.view.preload_plotlyjs`): the browser evaluates it while the user is still
on the import cell, not when the first panel is shown.
"""

import sys


def _shell():
    """The running IPython shell, without importing IPython where nothing has."""
    ipython = sys.modules.get("IPython")
    return ipython.get_ipython() if ipython is not None else None


if getattr(_shell(), "kernel", None) is not None:  # a notebook's kernel, not a script or the dashboard
    from widgets.panels.view import preload_plotlyjs

    preload_plotlyjs(_shell())
