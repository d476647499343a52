"""The dashboard's handling of bad run folders, the JupyterLab panels, and ``workbench report`` (no browser)."""

from __future__ import annotations

import html
import json
import os
import shutil
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pandas as pd
import param
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from widgets.dashboard import Dashboard
from widgets.panels.base import ResultPanel, RunPanel
from workbench.cli.main import main
from workbench.cli.report import execute_notebook, notebook_to_html
from workbench.store.results import Result
from workbench.training.train import train


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    for seed in (0, 1):
        train("synthetic-imbalance", epochs=3, seed=seed, runs_dir=root, dataset_params={"n": 300}, progress=False)
    return root


def good_ids(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith("synthetic"))


def copy_run(root: Path, name: str) -> Path:
    target = root / name
    shutil.copytree(root / good_ids(root)[0], target)
    return target


BREAKAGES = {
    "a-no-status": (lambda p: (p / "status.json").unlink(), "status.json missing"),
    "b-failed": (lambda p: (p / "status.json").write_text(json.dumps({"status": "failed", "error": "CUDA OOM", "version": 1})),
                 "is failed: CUDA OOM"),
    "c-new-version": (lambda p: (p / "status.json").write_text(json.dumps({"status": "complete", "version": 7})),
                      "format version 7"),
    "d-no-history": (lambda p: (p / "history.parquet").unlink(), "cannot read"),
    "e-bad-config": (lambda p: (p / "config.json").write_text("{not json"), "cannot read"),
}


@pytest.mark.parametrize("name", list(BREAKAGES))
def test_bad_run_shows_a_message_and_good_runs_still_work(runs_root: Path, tmp_path: Path, name: str) -> None:
    root = tmp_path / "runs"
    shutil.copytree(runs_root, root)
    breakage, expected = BREAKAGES[name]
    breakage(copy_run(root, name))
    dash = Dashboard(root)
    assert dash.run_select.value == name  # sorted first: the page opens on the broken run
    assert dash.message.visible and not dash.body.visible
    assert name in dash.message.object and expected in dash.message.object
    dash.run_select.value = good_ids(root)[0]
    assert not dash.message.visible and dash.body.visible
    assert len(dash.history_plot.object.data) > 0


def test_empty_runs_folder_and_symlink_outside(tmp_path: Path, runs_root: Path) -> None:
    dash = Dashboard(tmp_path / "nothing-here")
    assert dash.message.visible and "No runs" in dash.message.object
    root = tmp_path / "runs"
    root.mkdir()
    os.symlink(runs_root / good_ids(runs_root)[0], root / "escape")  # resolves outside the runs folder
    dash = Dashboard(root)
    assert dash.run_ids() == [] and dash.run_select.value is None
    with pytest.raises(ValueError, match="not a run"):
        dash.load("../" + good_ids(runs_root)[0])


def test_bad_result_gets_a_message_tab(tmp_path: Path, runs_root: Path) -> None:
    root = tmp_path / "runs"
    shutil.copytree(runs_root, root)
    folder = root / good_ids(root)[0] / "results" / "evil"
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps({"type": "Popen", "module": "subprocess", "fields": {}}))
    dash = Dashboard(root)
    assert [t.name for t in dash.tabs] == ["overview", "evil", "compare runs"]
    assert "outside the workbench package" in dash.tabs[1][0].object


def test_dashboard_controls_redraw(runs_root: Path) -> None:
    dash = Dashboard(runs_root)
    with param.edit_constant(dash.epochs):
        dash.epochs.value_throttled = (2, 3)
    assert dash.history_plot.object.layout.xaxis.range == (1.5, 3.5)
    dash.split.value = "train"
    assert dash.accuracy_plot.object.layout.title.text == "Accuracy on the train split"
    train_acc = dash.current().metrics["train"]["fused"]
    assert dash.accuracy_plot.object.data[0].y[0] == pytest.approx(train_acc)
    dash.tabs.active = len(dash.tabs) - 1  # the comparison is drawn when first shown
    names = {t.name for t in dash.compare_plot.object.data}
    assert names == set(good_ids(runs_root))
    assert dash.seeds_plot.object is not None and not dash.compare_message.visible  # across-seeds view
    dash.compare_select.value = good_ids(runs_root)[:1]
    assert {t.name for t in dash.compare_plot.object.data} == set(good_ids(runs_root)[:1])


@dataclass
class Scores(Result):
    scores: pd.DataFrame


def test_run_panel_controls_change_the_figures(runs_root: Path) -> None:
    from workbench.store.runs import load_run

    panel = RunPanel(load_run(runs_root / good_ids(runs_root)[0]))
    assert panel.epochs.value == (1, 3)
    panel.epochs.value = (2, 2)
    assert panel.history.layout.xaxis.range == (1.5, 2.5)
    before = panel.accuracy.layout.title.text
    panel.split.value = "calib"
    assert before == "Accuracy on the test split" and panel.accuracy.layout.title.text == "Accuracy on the calib split"
    expected = load_run(runs_root / good_ids(runs_root)[0]).accuracy().query("split == 'calib'")
    assert sorted(panel.accuracy.data[0].y) == sorted(expected.loc[expected.model == "fused", "accuracy"])


def test_result_panel_selector_switches_figures() -> None:
    import plotly.graph_objects as go

    figures = {"a": go.Figure(go.Bar(x=["m"], y=[1.0])), "b": go.Figure(go.Bar(x=["m"], y=[2.0]))}
    panel = ResultPanel(Scores(pd.DataFrame({"m": ["x"], "v": [0.5]})), "scores", figures=figures)
    assert panel.figure.data[0].y == (1.0,)
    panel.selector.value = "b"
    assert panel.figure.data[0].y == (2.0,)
    table = ResultPanel(Scores(pd.DataFrame({"m": ["x"], "v": [0.5]})), "unregistered")
    assert table.figure.data[0].type == "table" and list(table.figure.data[0].cells.values[1]) == ["0.5"]


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.srcs: list[str] = []
        self.details = 0

    def handle_starttag(self, tag, attrs) -> None:
        attrs = dict(attrs)
        if tag == "script" and attrs.get("src"):
            self.srcs.append(attrs["src"])
        self.details += tag == "details"


def write_notebook(path: Path) -> Path:
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    params = new_code_cell('n = 3\nlabel = "default"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [new_markdown_cell("# Report test"), params, new_code_cell(
        'import plotly.graph_objects as go\nimport plotly.io as pio\npio.renderers.default = "notebook"\n'
        'go.Figure(go.Bar(x=list(range(n)), y=[i * i for i in range(n)], name=label)).show()\n'
        'print(f"PARAMS n={n} label={label}")')]
    nbformat.write(nb, str(path))
    return path


def parse(html: str) -> _Scripts:
    parser = _Scripts()
    parser.feed(html)
    return parser


def test_report_command_writes_offline_html(tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "nb.ipynb")
    out = tmp_path / "out" / "report.html"
    assert main(["report", str(notebook), "-p", "n", "4", "-p", "label", "four", "--output", str(out), "--show-code"]) == 0
    html = out.read_text()
    assert "PARAMS n=4 label=four" in html
    assert "plotly.js v" in html and "Plotly.newPlot" in html  # the library is inlined, not linked
    scripts = parse(html)
    assert not [s for s in scripts.srcs if s.startswith(("http:", "https:", "//"))], scripts.srcs
    assert scripts.details >= 2  # code folded in <details>


def test_report_hides_or_folds_code(tmp_path: Path) -> None:
    executed = execute_notebook(write_notebook(tmp_path / "nb.ipynb"), tmp_path / "run.ipynb", {"n": 2})
    hidden = notebook_to_html(executed, tmp_path / "hidden.html", hide_code=True).read_text()
    shown = notebook_to_html(executed, tmp_path / "shown.html", hide_code=False).read_text()
    assert parse(hidden).details == 0 and "pio.renderers" not in hidden
    assert parse(shown).details >= 2 and "renderers" in shown


def test_report_command_errors_clearly(tmp_path: Path, capsys) -> None:
    assert main(["report", str(tmp_path / "missing.ipynb")]) == 2
    assert "missing.ipynb not found" in capsys.readouterr().err


def test_served_plotly_bundle_is_the_vendored_cartesian_build_and_can_switch_back():
    from panel.models.plotly import PlotlyPlot

    from widgets.plotly_bundle import STATIC_ROUTE, cartesian_file, served_bundle, use_bundle

    assert cartesian_file().is_file() and cartesian_file().stat().st_size < 2_000_000
    assert "plotly.js (cartesian - minified) v3.1.0" in cartesian_file().read_text()[:200]
    try:
        assert use_bundle("cartesian") == {STATIC_ROUTE: str(cartesian_file().parent)}
        assert PlotlyPlot.__javascript__ == [f"{STATIC_ROUTE}/{cartesian_file().name}"]
        assert served_bundle() == "cartesian"
    finally:
        assert use_bundle("full") == {}
    assert served_bundle() == "full" and PlotlyPlot.__javascript__[0].endswith("plotlyplot/plotly-3.1.0.min.js")
    with pytest.raises(ValueError, match="unknown plotly bundle 'webgl'"):
        use_bundle("webgl")


def test_figure_view_draws_what_the_served_bundle_can_and_says_what_it_cannot():
    import panel as pn
    import plotly.graph_objects as go

    from widgets.dashboard import figure_view
    from widgets.figures.result import table_figure
    from widgets.plotly_bundle import use_bundle

    cube = go.Figure(go.Scatter3d(x=[1], y=[2], z=[3]))
    table = table_figure(pd.DataFrame({"modality": ["a", "b"], "score": [0.25, 0.5]}))
    try:
        use_bundle("cartesian")
        assert isinstance(figure_view(go.Figure(go.Histogram(x=[1, 2]))), pn.pane.Plotly)
        message = figure_view(cube)
        text = html.unescape(message.object)  # the message pane holds escaped text
        assert isinstance(message, pn.pane.HTML) and "['scatter3d']" in text and "--plotly full" in text
        shown = figure_view(table)
        assert isinstance(shown, pn.pane.DataFrame) and shown.object["score"].tolist() == ["0.25", "0.5"]
    finally:
        use_bundle("full")
    assert isinstance(figure_view(cube), pn.pane.Plotly)
