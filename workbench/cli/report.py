"""Parameterised notebook reports: execute a notebook with papermill, render self-contained HTML.

Figures in the notebooks are plain plotly ``go.Figure`` objects shown with plotly.js
inlined, so the HTML opens offline. This module runs notebooks; it imports no UI code.

Example
-------
>>> from workbench.cli.report import render_notebook                       # doctest: +SKIP
>>> render_notebook("notebooks/01_quickstart.ipynb", "out.html", {"epochs": 3})  # doctest: +SKIP
"""

from __future__ import annotations

import keyword
import re
import tempfile
from importlib import resources
from pathlib import Path

RUN_REPORT_TEMPLATE = "run_report.ipynb"
RESULT_REPORT_TEMPLATE = "result_report.ipynb"
_REMOTE_SCRIPT = re.compile(r"<script[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>", re.IGNORECASE)


def notebook_parameters(notebook: str | Path) -> list[str]:
    """Names assigned in ``notebook``'s cell tagged ``parameters`` (papermill's own inspection).

    Examples
    --------
    >>> notebook_parameters(Path(__file__).parents[1] / "templates" / RUN_REPORT_TEMPLATE)
    ['run_path']
    """
    from papermill.inspection import inspect_notebook

    return list(inspect_notebook(str(notebook)))


def check_parameters(notebook: str | Path, parameters: dict) -> None:
    """Refuse any parameter name that is not an identifier assigned in the notebook's parameters cell.

    papermill pastes parameter *names* into the injected cell as code (values are quoted by its
    translator), so a name like ``x=__import__('os').system('...');y`` would run; and a misspelt
    name would otherwise be injected silently and ignored by the notebook.
    """
    names = [str(n) for n in parameters]
    if not names:
        return
    bad = next((n for n in names if not n.isidentifier() or keyword.iskeyword(n)), None)
    if bad is not None:
        raise ValueError(f"report parameter {bad!r}: not a Python identifier (use -p NAME VALUE with NAME "
                         f"from {Path(notebook).name}'s parameters cell)")
    known = notebook_parameters(notebook)
    unknown = [n for n in names if n not in known]
    if unknown:
        cell = ", ".join(known) if known else "none: the notebook has no cell tagged 'parameters'"
        raise ValueError(f"report parameter {unknown[0]!r} is not in {Path(notebook).name}'s parameters cell "
                         f"(it defines: {cell})")


def execute_notebook(notebook: str | Path, output: str | Path, parameters: dict | None = None, *,
                     cwd: str | Path | None = None, timeout: int = 1200) -> Path:
    """Execute ``notebook`` with papermill, injecting ``parameters``; returns the executed copy.

    Parameter names are checked against the notebook's parameters cell first
    (:func:`check_parameters`); values are injected as literals by papermill, never as code.
    """
    import papermill as pm

    notebook = Path(notebook)
    if not notebook.exists():
        raise FileNotFoundError(f"notebook {notebook} not found")
    check_parameters(notebook, parameters or {})
    pm.execute_notebook(str(notebook), str(output), parameters=parameters or {}, cwd=str(cwd) if cwd else None,
                        kernel_name="python3", progress_bar=False, execution_timeout=timeout)
    return Path(output)


# The lab template, without the CDN scripts (require.js, MathJax, mermaid, widget manager) so the
# page opens offline; code cells are folded in <details> when code is shown.
_OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{% block input_group -%}
<details class="workbench-code"><summary>code</summary>
{{ super() }}
</details>
{%- endblock input_group %}
"""


def notebook_to_html(executed: str | Path, html: str | Path, *, hide_code: bool = True) -> Path:
    """Render an executed notebook to one self-contained HTML file that opens offline.

    Plotly figures shown with the ``notebook`` renderer carry plotly.js inline; no script is
    fetched from the network. ``hide_code=False`` keeps each code cell folded in a ``<details>``
    element (click "code" to unfold); ``hide_code=True`` leaves the code out.
    """
    import nbformat
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(executed), as_version=4)
    _draw_plotly_bundles(nb)
    _prefer_static_copies(nb)
    exporter = HTMLExporter(template_name="lab", template_file="workbench_offline.html.j2",
                            extra_loaders=[DictLoader({"workbench_offline.html.j2": _OFFLINE_TEMPLATE})])
    exporter.exclude_input = hide_code
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(nb)
    body = _REMOTE_SCRIPT.sub("", body)  # mathjax/require.js from a CDN: the report must open offline
    html = Path(html)
    html.parent.mkdir(parents=True, exist_ok=True)
    html.write_text(body, encoding="utf-8")
    return html


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
PLOTLY_MIME = "application/vnd.plotly.v1+json"
_FULL_PLOTLYJS = re.compile(r"\* plotly\.js v\d")  # the full build's licence header (the cartesian one names itself)


def _draw_plotly_bundles(nb) -> None:
    """Give each output that is only a plotly mime bundle (a figure shown with plotly's default
    renderer in a kernel) an HTML copy that draws it, so the report shows it: nbconvert's HTML has no
    renderer for that mime type. The full plotly.js is inlined once, in the first such copy, unless
    an earlier output of the page already carries it.
    """
    import plotly.io as pio

    has_plotlyjs = False
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if PLOTLY_MIME in data and "text/html" not in data:
                spec = dict(data[PLOTLY_MIME])
                config = spec.pop("config", None)
                data["text/html"] = pio.to_html(spec, config=config, include_plotlyjs=not has_plotlyjs,
                                                full_html=False, validate=False, default_height="525px")
                has_plotlyjs = True
            page = str(data.get("text/html", ""))
            # a panel's static copy carries plotly.js inert, run only once the copy shows: not counted
            has_plotlyjs = has_plotlyjs or bool(_FULL_PLOTLYJS.search(page) and "workbench-plotlyjs" not in page)


def _prefer_static_copies(nb) -> None:
    """Keep only what a page without a kernel can draw: a widget's static copy, never its live view.

    A page without a kernel has no widget models, and the widget manager's script would come from a
    CDN (removed, see ``_REMOTE_SCRIPT``), so a widget view draws nothing there. An output that also
    carries HTML (a panel's static copy of its figures) keeps the HTML; one that is only a widget
    (a tqdm progress bar, a bare control) is left out, as is the notebook's saved widget state (the
    loader's plotly.js among it, ~1.3 MB of dead weight).
    """
    for cell in nb.cells:
        kept = []
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW in data and "text/html" not in data:
                continue
            data.pop(WIDGET_VIEW, None)
            kept.append(output)
        if "outputs" in cell:
            cell.outputs = kept
    nb.metadata.pop("widgets", None)


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


def render_result_report(result_path: str | Path, html: str | Path | None = None) -> Path:
    """The report of one saved result folder (its figures and tables) as HTML, e.g. a hyperparameter
    study's sensitivity view (``RUNS/.studies/STUDY``; ``workbench tune ... --report FILE``)."""
    result_path = Path(result_path).resolve()
    if not (result_path / "result.json").is_file():
        raise FileNotFoundError(f"{result_path}: no result.json; not a saved result")
    template = resources.files("workbench") / "templates" / RESULT_REPORT_TEMPLATE
    with resources.as_file(template) as path:
        return render_notebook(path, html or result_path / "report.html", {"result_path": str(result_path)})


def _parameter_value(text: str):
    """A ``-p`` value: JSON where it parses (numbers, booleans, lists), else the plain string; never evaluated."""
    import json

    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def cmd_report(args) -> int:
    notebook = Path(args.notebook)
    if not notebook.is_file():
        raise FileNotFoundError(f"notebook {notebook} not found")
    parameters = {name: _parameter_value(value) for name, value in args.parameters or []}
    check_parameters(notebook, parameters)  # before the output path or a kernel is touched
    html = Path(args.output) if args.output else notebook.with_suffix(".html")
    render_notebook(notebook, html, parameters, hide_code=not args.show_code)
    print(f"report: {html}")
    return 0


def register(subparsers) -> None:
    """``workbench report NOTEBOOK -p NAME VALUE ... [--output report.html] [--show-code]``."""
    p = subparsers.add_parser("report", help="execute a notebook with papermill and write self-contained HTML")
    p.add_argument("notebook", help="the .ipynb to execute (needs a cell tagged 'parameters' for -p)")
    p.add_argument("-p", "--parameter", dest="parameters", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="papermill parameter (repeatable); VALUE is read as JSON when it parses, else a string")
    p.add_argument("-o", "--output", help="HTML file to write (default: NOTEBOOK with .html)")
    p.add_argument("--show-code", action="store_true", help="keep code cells, folded (click to unfold)")
    p.set_defaults(func=cmd_report)
