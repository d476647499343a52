"""Figure builders: pure functions from a workbench result to a plotly ``go.Figure``.

The only place figures are drawn; panels, the dashboard and HTML reports all call these."""
