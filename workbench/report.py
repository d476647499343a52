"""Parameterised notebook reports: execute a notebook with papermill, render self-contained HTML.

Figures in the notebooks are plain plotly ``go.Figure`` objects shown with plotly.js
inlined, so the HTML opens offline. This module runs notebooks; it imports no UI code.

Example
-------
>>> from workbench.report import render_notebook                       # doctest: +SKIP
>>> render_notebook("notebooks/01_quickstart.ipynb", "out.html", {"epochs": 3})  # doctest: +SKIP
"""

from __future__ import annotations

import re
import tempfile
from importlib import resources
from pathlib import Path

RUN_REPORT_TEMPLATE = "run_report.ipynb"
_REMOTE_SCRIPT = re.compile(r"<script[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>", re.IGNORECASE)


def execute_notebook(notebook: str | Path, output: str | Path, parameters: dict | None = None, *,
                     cwd: str | Path | None = None, timeout: int = 1200) -> Path:
    """Execute ``notebook`` with papermill, injecting ``parameters``; returns the executed copy."""
    import papermill as pm

    notebook = Path(notebook)
    if not notebook.exists():
        raise FileNotFoundError(f"notebook {notebook} not found")
    pm.execute_notebook(str(notebook), str(output), parameters=parameters or {}, cwd=str(cwd) if cwd else None,
                        kernel_name="python3", progress_bar=False, execution_timeout=timeout)
    return Path(output)


def notebook_to_html(executed: str | Path, html: str | Path, *, hide_code: bool = True) -> Path:
    """Render an executed notebook to one self-contained HTML file (code cells hidden or folded)."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(executed), as_version=4)
    exporter = HTMLExporter(template_name="lab")
    exporter.exclude_input = hide_code
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(nb)
    body = _REMOTE_SCRIPT.sub("", body)  # mathjax/require.js from a CDN: the report must open offline
    html = Path(html)
    html.parent.mkdir(parents=True, exist_ok=True)
    html.write_text(body, encoding="utf-8")
    return html


def render_notebook(notebook: str | Path, html: str | Path, parameters: dict | None = None, *,
                    hide_code: bool = True) -> Path:
    """Execute a notebook with papermill and write it as self-contained HTML."""
    with tempfile.TemporaryDirectory() as tmp:
        executed = execute_notebook(notebook, Path(tmp) / "executed.ipynb", parameters,
                                    cwd=Path(notebook).resolve().parent)
        return notebook_to_html(executed, html, hide_code=hide_code)


def render_run_report(run_path: str | Path, html: str | Path | None = None) -> Path:
    """The run report (training curves, accuracy per modality, every saved analysis) as HTML."""
    run_path = Path(run_path).resolve()
    template = resources.files("workbench") / "templates" / RUN_REPORT_TEMPLATE
    with resources.as_file(template) as path:
        return render_notebook(path, html or run_path / "report.html", {"run_path": str(run_path)})
