"""The UI layer: figure builders (result -> plotly figure), JupyterLab panels and the Panel
dashboard. It reads workbench results; it never trains or computes statistics itself."""
