"""JupyterLab panels (ipywidgets) over workbench results; they draw, never compute."""
