"""JupyterLab panels: a figure switch shows exactly the selected figure, figures travel as plain plotly
bundles (no FigureWidget, no plotly.js per figure), saved notebooks keep static copies, and the run
panel's "what this run says" sentences match the run's numbers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pandas as pd
import plotly.graph_objects as go
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from widgets.panels.base import ResultPanel, RunPanel
from widgets.panels.view import (
    _PLOTLYJS_SENT,
    PLOTLY_MIME,
    FigureView,
    figure_bundle,
    figure_html,
    figure_spec_from_html,
    plotly_loader,
    views,
)
from workbench.cli.report import notebook_to_html
from workbench.store.runs import load_run
from workbench.training.train import train

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def run_path(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    return train("synthetic-imbalance", epochs=3, seed=0, runs_dir=root, dataset_params={"n": 300},
                 progress=False).path


def _shown_layout(view: FigureView) -> dict:
    return view.spec()["layout"]


def _expected_layout(fig: go.Figure) -> dict:
    return figure_bundle(fig)[PLOTLY_MIME]["layout"]


def test_switch_shows_only_the_selected_figures_layout() -> None:
    """The browser kept shapes, annotations and axis types of the previous figure (issue 17, 1)."""
    busy = go.Figure(go.Scatter(x=[1, 10], y=[1, 2]))
    busy.update_xaxes(type="log")
    busy.add_vline(x=3)
    busy.add_annotation(text="old note", x=1, y=1)
    plain = go.Figure(go.Bar(x=["a", "b"], y=[3.0, 4.0]), layout={"title": "plain"})
    panel = ResultPanel(pd.DataFrame(), "r", figures={"busy": busy, "plain": plain})
    assert _shown_layout(panel.view)["xaxis"]["type"] == "log" and _shown_layout(panel.view)["shapes"]
    panel.selector.value = "plain"
    shown = _shown_layout(panel.view)
    assert shown == _expected_layout(plain)
    assert "shapes" not in shown and "annotations" not in shown and "type" not in shown.get("xaxis", {})
    assert [t["type"] for t in panel.view.spec()["data"]] == ["bar"]
    assert len(panel.view.outputs) == 1  # replaced, not appended
    panel.selector.value = "busy"
    assert _shown_layout(panel.view) == _expected_layout(busy)


def test_run_panel_draws_plain_bundles_and_redraws(run_path: Path) -> None:
    panel = RunPanel(load_run(run_path))
    shown = views(panel)
    assert len(shown) == 2 and not any(isinstance(c, go.FigureWidget) for c in shown)
    for view in shown:  # no plotly.js inside a figure's output: the page's one plotly.js draws it
        assert set(view.bundle()) == {"text/html", "text/plain"}
        assert "Plotly.newPlot" in view.bundle()["text/html"] and "<script src" not in view.bundle()["text/html"]
        assert len(json.dumps(view.bundle())) < 200_000
    first = panel.history
    panel.epochs.value = (2, 3)
    assert _shown_layout(panel.history_view)["xaxis"]["range"] == [1.5, 3.5]
    assert first.layout.xaxis.range is None  # the figure shown before was not edited in place
    panel.split.value = "train"
    assert _shown_layout(panel.accuracy_view)["title"]["text"] == "Accuracy on the train split"


def test_figure_html_is_inert_and_plotlyjs_comes_once_per_kernel() -> None:
    """Hostile figure text stays data inside the HTML block; one loader model serves every view."""
    hostile = '</script><img src=x onerror="window.__pwned=1"> & <!--'
    fig = go.Figure(go.Bar(x=[hostile], y=[1.0]), layout={"title": hostile})
    text = figure_html(fig)
    assert "<img" not in text and "<!--" not in text and text.count("</script>") == 2
    assert figure_spec_from_html(text)["layout"]["title"]["text"] == hostile  # the JSON is the figure's, intact
    assert figure_spec_from_html(text) == figure_bundle(fig)[PLOTLY_MIME]
    first, second = FigureView(fig), FigureView(go.Figure(go.Scatter3d(x=[1], y=[1], z=[1])))
    assert plotly_loader() is plotly_loader() and "window.Plotly" in plotly_loader()._esm
    assert set(first.bundle()) == {"text/html", "text/plain"}
    assert set(second.bundle()) == {PLOTLY_MIME, "text/plain"}  # not cartesian: the mime extension draws it


def test_showing_a_panel_writes_the_live_widget_then_its_static_copy(run_path: Path) -> None:
    """JupyterLab draws an output's widget view whenever it has one, so the static copy of the
    figures is an output of its own after the widget's, hidden until the live panel is missing."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    InteractiveShell.instance()
    panel = RunPanel(load_run(run_path))
    with capture_output() as shown:
        panel._ipython_display_()
    live, copy = (o.data for o in shown.outputs)
    assert WIDGET_MIME in live and "text/html" not in live and live["text/plain"].startswith("RunPanel: a live panel")
    html = copy["text/html"]
    figures = [v.figure for v in views(panel) if v.figure is not None]
    assert html.count("<div class='workbench-figure'>") == len(figures) >= 2 and "Training history" in html
    # hidden until its script finds no live view of this panel (its model's class) on the page
    assert html.startswith(f"<div class='workbench-static-panel' data-panel='{panel.model_id}' style='display:none'>")
    assert f"workbench-panel-{panel.model_id}" in panel._dom_classes
    assert "class='workbench-plotlyjs'" in html or "cartesian" in _PLOTLYJS_SENT  # plotly.js, inert, once a kernel
    assert not re.search(r"<script[^>]*\bsrc=", html)  # nothing fetched


def test_run_takeaways_quote_the_runs_numbers(run_path: Path) -> None:
    from widgets.summary import run_takeaways

    run = load_run(run_path)
    acc = run.accuracy().query("split == 'test'").set_index("model")["accuracy"]
    y = run.predictions.query("split == 'test'")["y"]
    sentence = run_takeaways(run, {})[0]
    assert f"Fused accuracy on the test split: {acc['fused']:.3f}" in sentence
    assert f"best unimodal head {acc.drop('fused').idxmax()} {acc.drop('fused').max():.3f}" in sentence
    assert f"scores {y.value_counts().iloc[0] / len(y):.3f}" in sentence


def test_saved_notebook_keeps_the_figures(run_path: Path, tmp_path: Path, monkeypatch) -> None:
    """Execute a notebook showing a run panel; its saved outputs hold the figures outside the widget."""
    root = str(Path(__file__).resolve().parents[2])  # the kernel imports this checkout's packages
    monkeypatch.setenv("PYTHONPATH", root + (":" + __import__("os").environ["PYTHONPATH"]
                                              if __import__("os").environ.get("PYTHONPATH") else ""))
    imports = "import widgets.figures.run\nimport widgets.panels.view as view\nprint('loader:', view._LOADER is not None)"
    nb = new_notebook(cells=[new_code_cell(imports),
                             new_code_cell(f"from workbench import load_run\nload_run({str(run_path)!r})")])
    NotebookClient(nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    saved = tmp_path / "saved.ipynb"
    nbformat.write(nb, saved)
    # importing the UI in a kernel put plotly.js on the page before any panel (widgets/__init__.py)
    assert nbformat.read(saved, as_version=4).cells[0].outputs[0]["text"].strip() == "loader: True"
    outputs = nbformat.read(saved, as_version=4).cells[1].outputs
    data = [o["data"] for o in outputs if "data" in o]
    assert WIDGET_MIME in data[0] and "text/html" not in data[0]  # the live panel, then its static copy
    html = data[1]["text/html"]
    assert html.count("Plotly.newPlot") >= 2 and "Training history" in html and "workbench-plotlyjs" in html
    # the widget state saved with the notebook holds the figures as HTML blocks, not FigureWidgets, and
    # plotly.js once (the loader model), not once per figure
    state = json.dumps(nbformat.read(saved, as_version=4).metadata.get("widgets", {}))
    assert "workbench-figure" in state and "FigureModel" not in state
    assert state.count('"model_name": "AnyModel"') == 1 and state.count("plotly.js (cartesian") == 1
    # the HTML report of that notebook draws the static copies (no widget manager there)
    page = notebook_to_html(saved, tmp_path / "saved.html").read_text()
    assert page.count("Plotly.newPlot") >= 2 and "Training history" in page and WIDGET_MIME not in page
    assert "RunPanel: a live panel" not in page  # the widget output left out
    # ... and carries no dead widget state: plotly.js once, inlined for the static copies
    assert "widget-state+json" not in page and page.count("plotly.js (cartesian") == 1
