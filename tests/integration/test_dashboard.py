"""The dashboard's handling of bad run folders, the JupyterLab panels, and ``workbench report`` (no browser)."""

from __future__ import annotations

import html
import json
import os
import re
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
from workbench.cli.report import PLOTLY_MIME, WIDGET_VIEW, execute_notebook, notebook_to_html
from workbench.store.results import Result
from workbench.training.train import train


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    for seed in (0, 1):
        train(
            "synthetic-imbalance",
            epochs=3,
            seed=seed,
            runs_dir=root,
            dataset_params={"n": 300},
            progress=False,
        )
    return root


def good_ids(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith("synthetic"))


def copy_run(root: Path, name: str) -> Path:
    target = root / name
    shutil.copytree(root / good_ids(root)[0], target)
    return target


BREAKAGES = {
    "a-no-status": (lambda p: (p / "status.json").unlink(), "status.json missing"),
    "b-failed": (
        lambda p: (p / "status.json").write_text(
            json.dumps({"status": "failed", "error": "CUDA OOM", "version": 1})
        ),
        "is failed: CUDA OOM",
    ),
    "c-new-version": (
        lambda p: (p / "status.json").write_text(json.dumps({"status": "complete", "version": 7})),
        "format version 7",
    ),
    "d-no-history": (lambda p: (p / "history.parquet").unlink(), "cannot read"),
    "e-bad-config": (lambda p: (p / "config.json").write_text("{not json"), "cannot read"),
}


@pytest.mark.parametrize("name", list(BREAKAGES))
def test_bad_run_shows_a_message_and_good_runs_still_work(
    runs_root: Path, tmp_path: Path, name: str
) -> None:
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
    os.symlink(
        runs_root / good_ids(runs_root)[0], root / "escape"
    )  # resolves outside the runs folder
    dash = Dashboard(root)
    assert dash.run_ids() == [] and dash.run_select.value is None
    with pytest.raises(ValueError, match="not a run"):
        dash.load("../" + good_ids(runs_root)[0])


def test_bad_result_gets_a_message_tab(tmp_path: Path, runs_root: Path) -> None:
    root = tmp_path / "runs"
    shutil.copytree(runs_root, root)
    folder = root / good_ids(root)[0] / "results" / "evil"
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(
        json.dumps({"type": "Popen", "module": "subprocess", "fields": {}})
    )
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
    assert (
        dash.seeds_plot.object is not None and not dash.compare_message.visible
    )  # across-seeds view
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
    assert (
        before == "Accuracy on the test split"
        and panel.accuracy.layout.title.text == "Accuracy on the calib split"
    )
    expected = load_run(runs_root / good_ids(runs_root)[0]).accuracy().query("split == 'calib'")
    assert sorted(panel.accuracy.data[0].y) == sorted(
        expected.loc[expected.model == "fused", "accuracy"]
    )


def test_result_panel_selector_switches_figures() -> None:
    import plotly.graph_objects as go

    figures = {"a": go.Figure(go.Bar(x=["m"], y=[1.0])), "b": go.Figure(go.Bar(x=["m"], y=[2.0]))}
    panel = ResultPanel(Scores(pd.DataFrame({"m": ["x"], "v": [0.5]})), "scores", figures=figures)
    assert panel.figure.data[0].y == (1.0,)
    panel.selector.value = "b"
    assert panel.figure.data[0].y == (2.0,)
    table = ResultPanel(Scores(pd.DataFrame({"m": ["x"], "v": [0.5]})), "unregistered")
    assert table.figure.data[0].type == "table" and list(table.figure.data[0].cells.values[1]) == [
        "0.5"
    ]


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
    nb = new_notebook(
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        }
    )
    params = new_code_cell('n = 3\nlabel = "default"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        new_markdown_cell("# Report test"),
        params,
        new_code_cell(
            'import plotly.graph_objects as go\nimport plotly.io as pio\npio.renderers.default = "notebook"\n'
            "go.Figure(go.Bar(x=list(range(n)), y=[i * i for i in range(n)], name=label)).show()\n"
            'print(f"PARAMS n={n} label={label}")'
        ),
    ]
    nbformat.write(nb, str(path))
    return path


def parse(html: str) -> _Scripts:
    parser = _Scripts()
    parser.feed(html)
    return parser


def test_report_command_writes_offline_html(tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "nb.ipynb")
    out = tmp_path / "out" / "report.html"
    assert (
        main(
            [
                "report",
                str(notebook),
                "-p",
                "n",
                "4",
                "-p",
                "label",
                "four",
                "--output",
                str(out),
                "--show-code",
            ]
        )
        == 0
    )
    html = out.read_text()
    assert "PARAMS n=4 label=four" in html
    assert "plotly.js v" in html and "Plotly.newPlot" in html  # the library is inlined, not linked
    scripts = parse(html)
    assert not [s for s in scripts.srcs if s.startswith(("http:", "https:", "//"))], scripts.srcs
    assert scripts.details >= 2  # code folded in <details>


def test_report_hides_or_folds_code(tmp_path: Path) -> None:
    executed = execute_notebook(
        write_notebook(tmp_path / "nb.ipynb"), tmp_path / "run.ipynb", {"n": 2}
    )
    hidden = notebook_to_html(executed, tmp_path / "hidden.html", hide_code=True).read_text()
    shown = notebook_to_html(executed, tmp_path / "shown.html", hide_code=False).read_text()
    assert parse(hidden).details == 0 and "pio.renderers" not in hidden
    assert parse(shown).details >= 2 and "renderers" in shown


def test_report_draws_figures_shown_as_plotly_bundles(tmp_path: Path) -> None:
    """A figure shown with plotly's default kernel renderer is only a plotly mime bundle, which
    nbconvert's HTML cannot draw: the report adds an HTML copy, plotly.js inlined once."""
    import plotly.graph_objects as go
    import plotly.io as pio

    hostile = "</script><img src=x onerror=\"window.__pwned=1\">"
    figures = [go.Figure(go.Bar(y=[1, 2]), layout={"title": hostile}), go.Figure(go.Scatter(y=[3, 1]))]
    nb = new_notebook(cells=[new_code_cell("fig")])
    nb.cells[0].outputs = [nbformat.v4.new_output("display_data", data={PLOTLY_MIME: json.loads(pio.to_json(f))})
                           for f in figures]
    path = tmp_path / "bundles.ipynb"
    nbformat.write(nb, path)
    page = notebook_to_html(path, tmp_path / "bundles.html").read_text()
    assert page.count('class="plotly-graph-div"') == 2 and page.count("Plotly.newPlot(") >= 2
    assert len(re.findall(r"\* plotly\.js v\d", page)) == 1  # the full build, once
    assert "<img" not in page and "\\u003cimg src=x" in page  # the title stays data
    # a page whose earlier output already carries plotly.js gets no second copy
    nb.cells.insert(0, new_code_cell("shown"))
    nb.cells[0].outputs = [nbformat.v4.new_output("display_data", data={
        "text/html": pio.to_html(figures[1], include_plotlyjs=True, full_html=False)})]
    nbformat.write(nb, path)
    page = notebook_to_html(path, tmp_path / "bundles.html").read_text()
    assert page.count('class="plotly-graph-div"') == 3 and len(re.findall(r"\* plotly\.js v\d", page)) == 1


def test_report_keeps_static_copies_and_leaves_out_live_widgets(tmp_path: Path) -> None:
    view = {"version_major": 2, "version_minor": 0, "model_id": "abc"}
    nb = new_notebook(cells=[new_code_cell("panel"), new_code_cell("loop")])
    nb.cells[0].outputs = [nbformat.v4.new_output("display_data", data={
        WIDGET_VIEW: view, "text/html": "<p>the panel's static copy</p>", "text/plain": "RunPanel(...)"})]
    nb.cells[1].outputs = [nbformat.v4.new_output("display_data", data={
        WIDGET_VIEW: view, "text/plain": "train mfeat:   0%|          | 0/30"})]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"abc": {}}}}
    path = tmp_path / "widgets.ipynb"
    nbformat.write(nb, path)
    page = notebook_to_html(path, tmp_path / "widgets.html").read_text()
    assert "the panel's static copy" in page
    assert "0%|" not in page and WIDGET_VIEW not in page and "widget-state" not in page


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
    assert served_bundle() == "full" and PlotlyPlot.__javascript__[0].endswith(
        "plotlyplot/plotly-3.1.0.min.js"
    )
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
        assert (
            isinstance(message, pn.pane.HTML)
            and "['scatter3d']" in text
            and "--plotly full" in text
        )
        shown = figure_view(table)
        assert isinstance(shown, pn.pane.DataFrame) and shown.object["score"].tolist() == [
            "0.25",
            "0.5",
        ]
    finally:
        use_bundle("full")
    assert isinstance(figure_view(cube), pn.pane.Plotly)


# -- the runs table, compare, exports, links, refresh (issue 17) ------------------------------------------


@pytest.fixture(scope="module")
def compare_root(runs_root: Path, tmp_path_factory) -> Path:
    """The two seeds of one configuration, and the same with lr=0.01 on seed 0."""
    root = tmp_path_factory.mktemp("compare") / "runs"
    shutil.copytree(runs_root, root)
    train(
        "synthetic-imbalance",
        epochs=3,
        seed=0,
        lr=0.01,
        runs_dir=root,
        dataset_params={"n": 300},
        progress=False,
    )
    return root


def _ids(root: Path) -> dict[str, str]:
    from workbench.analyses.runs_table import runs_table

    runs = runs_table(root).runs
    base = sorted(
        runs.loc[runs["params"] == "", "run_id"],
        key=lambda r: runs.set_index("run_id").at[r, "seed"],
    )
    return {
        "s0": base[0],
        "s1": base[1],
        "lr": runs.loc[runs["params"] == "lr=0.01", "run_id"].iloc[0],
    }


def test_runs_table_feeds_overview_and_compare(compare_root: Path) -> None:
    from widgets.dashboard import TABLE_COLUMNS
    from workbench.store.runs import load_run

    ids = _ids(compare_root)
    runs = {k: load_run(compare_root / v) for k, v in ids.items()}
    dash = Dashboard(compare_root)
    grid = dash.runs_grid.value
    assert list(grid.columns) == TABLE_COLUMNS and len(grid) == 3
    assert grid.set_index("run_id").at[ids["lr"], "params"] == "lr=0.01"
    assert grid.set_index("run_id").at[ids["s1"], "acc_fused"] == pytest.approx(
        runs["s1"].metrics["test"]["fused"]
    )
    # the default comparison: the seeds of one configuration, ticked in the table
    assert sorted(dash.compare_select.value) == sorted([ids["s0"], ids["s1"]])
    assert sorted(grid["run_id"].iloc[i] for i in dash.runs_grid.selection) == sorted(
        [ids["s0"], ids["s1"]]
    )
    # ticking a row shows it in the overview and adds it to the comparison
    dash.runs_grid.selection = [
        *dash.runs_grid.selection,
        int(grid.index[grid["run_id"] == ids["lr"]][0]),
    ]
    assert dash.run_select.value == ids["lr"] and sorted(dash.compare_select.value) == sorted(
        ids.values()
    )
    dash.tabs.active = len(dash.tabs) - 1
    differ = dash.differ_grid.value.set_index("parameter")
    assert differ.index.tolist() == ["lr", "seed"]
    assert differ.loc["lr", ids["lr"]] == "0.01" and differ.loc["lr", ids["s1"]] == "0.001"
    # any metric, configurations named by the setting that differs
    dash.metric_select.value = "final_train_loss"
    fig = dash.seeds_plot.object
    names = [t.replace("<br>", " ") for t in fig.layout.yaxis.ticktext]
    assert names == ["lr=0.001", "lr=0.01"] or sorted(names) == ["lr=0.001", "lr=0.01"]
    row = names.index("lr=0.001")
    mean = fig.data[0].x[list(fig.data[0].y).index(row)]
    expected = (
        runs["s0"].history["train_loss"].iloc[-1] + runs["s1"].history["train_loss"].iloc[-1]
    ) / 2
    assert mean == pytest.approx(expected)
    paired = dash.paired_plot.object
    assert paired.data[0].x[0] == pytest.approx(
        runs["lr"].history["train_loss"].iloc[-1] - runs["s0"].history["train_loss"].iloc[-1]
    )  # shared seed 0
    assert "lr=0.01<br>− lr=0.001" in paired.layout.yaxis.ticktext[0]
    # learning curves over seeds, with bands, for the chosen history column
    dash.curve_select.value = "heldout_acc"
    curves = dash.curves_plot.object
    line = next(t for t in curves.data if t.name == "lr=0.001 (2 seeds)")
    assert line.y[0] == pytest.approx(
        (runs["s0"].history["heldout_acc"].iloc[0] + runs["s1"].history["heldout_acc"].iloc[0]) / 2
    )
    assert any(t.name == "lr=0.001: 95% band" and t.fill == "toself" for t in curves.data)


def test_concurrent_compare_redraws_leave_a_complete_view(compare_root: Path) -> None:
    """Ticking rows and opening the tab redraw the comparison on two pool threads at once: under load one
    redraw read the other's reset comparison and left the metric selector empty (browser-test flake)."""
    import sys

    ids = _ids(compare_root)
    dash = Dashboard(compare_root)
    dash.compare_select.value = list(ids.values())
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as a loaded machine does
    try:
        _redraw_at_once(dash, ids)
    finally:
        sys.setswitchinterval(interval)


def _redraw_at_once(dash, ids: dict[str, str]) -> None:
    import threading

    for _ in range(3):
        threads = [threading.Thread(target=dash.redraw_compare) for _ in range(4)]
        threads += [threading.Thread(target=dash.redraw_metric) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert "final_train_loss" in dash.metric_select.options.values()
        assert dash.comparison is not None and dash.seeds_plot.object is not None
        assert sorted(dash._runs_compared) == sorted(ids.values())


def _csv(download) -> pd.DataFrame:
    import io

    return pd.read_csv(io.StringIO(download.callback().getvalue()))


def test_every_table_downloads_as_csv(compare_root: Path) -> None:
    ids = _ids(compare_root)
    dash = Dashboard(compare_root)
    assert sorted(_csv(dash.runs_csv)["run_id"]) == sorted(ids.values())
    dash.compare_select.value = list(ids.values())
    assert _csv(dash.differ_csv)["parameter"].tolist() == ["lr", "seed"]
    summary = _csv(dash.summary_csv)
    assert set(summary["config"]) == {"lr=0.001", "lr=0.01"} and "final_heldout_acc" in set(
        summary["metric"]
    )
    assert set(_csv(dash.paired_csv)["config_b"]) == {"lr=0.01"}
    from widgets.dashboard import csv_text

    assert csv_text(pd.DataFrame({"run_id": ['=HYPERLINK("x")', "@SUM(1)", "ok"]})).splitlines()[
        1:
    ] == ['"\'=HYPERLINK(""x"")"', "'@SUM(1)", "ok"]


def test_refresh_picks_up_new_runs_and_the_view_goes_in_the_link(
    tmp_path: Path, compare_root: Path
) -> None:
    root = tmp_path / "runs"
    shutil.copytree(compare_root, root)
    ids = _ids(root)
    dash = Dashboard(root)
    assert dash.refresh() is False  # nothing changed
    shutil.copytree(root / ids["s0"], root / "a-new-run")
    assert dash.refresh() is True
    assert (
        "a-new-run" in set(dash.runs_grid.value["run_id"])
        and "a-new-run" in dash.run_select.options
    )
    dash.apply_query({"run": ids["lr"], "tab": "compare runs"})
    assert dash.run_select.value == ids["lr"] and dash.tabs[dash.tabs.active].name == "compare runs"
    assert dash.query() == {"run": ids["lr"], "tab": "compare runs"}
    dash.apply_query({"run": "../../etc", "tab": "<img src=x>"})  # unknown values change nothing
    assert dash.query() == {"run": ids["lr"], "tab": "compare runs"}


def test_scalars_view_draws_the_chosen_history_columns(compare_root: Path) -> None:
    from workbench.store.runs import load_run

    dash = Dashboard(compare_root)
    history = load_run(compare_root / dash.run_select.value).history
    assert dash.scalar_select.value == ["train_loss", "heldout_loss"]
    dash.scalar_select.value = ["heldout_acc_weak"]
    (trace,) = dash.scalars_plot.object.data
    assert list(trace.y) == pytest.approx(history["heldout_acc_weak"].tolist())
    # another run: its default columns drawn once (the selector's watcher or the explicit redraw, not both)
    import widgets.dashboard as dashboard

    built = []
    real = dashboard.scalars_figure
    dashboard.scalars_figure = lambda *a, **k: built.append(1) or real(*a, **k)
    try:
        other = next(v for v in dash.run_select.options if v != dash.run_select.value)
        dash.run_select.value = other
        dash.run_select.value = next(v for v in dash.run_select.options if v != other)
    finally:
        dashboard.scalars_figure = real
    assert len(built) == 2 and dash.scalar_select.value == ["train_loss", "heldout_loss"]
    other_history = load_run(compare_root / dash.run_select.value).history
    assert list(dash.scalars_plot.object.data[0].y) == pytest.approx(other_history["train_loss"].tolist())


def test_hostile_names_are_shown_as_text(tmp_path: Path, runs_root: Path) -> None:
    root = tmp_path / "runs"
    shutil.copytree(runs_root, root)
    evil = '<img src=x onerror="alert(1)">'
    folder = root / evil
    shutil.copytree(root / good_ids(root)[0], folder)
    config = json.loads((folder / "config.json").read_text())
    config["dataset"] = "<script>alert(2)</script>"
    (folder / "config.json").write_text(json.dumps(config))
    dash = Dashboard(root)
    assert evil in set(
        dash.runs_grid.value["run_id"]
    )  # raw in the table: Tabulator's plaintext formatter escapes
    assert (
        html.escape(evil, quote=True) in dash.compare_select.options
    )  # choices.js labels are HTML: escaped
    dash.run_select.value = evil
    assert "<script>" not in dash.summary.object and "<img" not in dash.summary.object
    assert "&lt;img" in dash.summary.object
    dash.report_status.object = ""
    dash.compare_select.value = [evil, good_ids(root)[1]]
    dash.tabs.active = len(dash.tabs) - 1
    assert (
        html.escape(evil, quote=True) in dash.differ_grid.value.columns
    )  # Tabulator titles are HTML
    assert evil not in dash.differ_grid.value.columns
    texts = dash.compare_plot.object.to_json()
    assert "<img" not in texts and "&lt;img" in texts


def test_report_button_writes_the_runs_report_inside_its_folder(
    monkeypatch, runs_root: Path
) -> None:
    import workbench.cli.report as report

    calls = []

    def fake_report(run_path, html=None):
        calls.append((Path(run_path), Path(html)))
        Path(html).write_text("<html>report</html>")
        return Path(html)

    monkeypatch.setattr(report, "render_run_report", fake_report)
    dash = Dashboard(runs_root)
    try:
        path = dash.write_report()
        folder = (runs_root / dash.run_select.value).resolve()
        assert calls == [(folder, folder / "report.html")] and path == folder / "report.html"
        assert (
            dash.report_file.visible
            and dash.report_file.filename == f"{dash.run_select.value}-report.html"
        )
    finally:
        (runs_root / dash.run_select.value / "report.html").unlink(missing_ok=True)
    monkeypatch.setattr(
        report,
        "render_run_report",
        lambda *a, **k: (_ for _ in ()).throw(RuntimeError("<kernel died>")),
    )
    assert dash.write_report() is None and "&lt;kernel died&gt;" in dash.report_status.object


def test_report_button_runs_the_real_report_writer(tmp_path: Path) -> None:
    """The button's real path (papermill, a kernel, nbconvert) for a small saved run: the HTML lands
    inside the run folder and holds the run's figures with their captions, plotly.js inlined."""
    from widgets.figures.run import history_figure
    from widgets.text import caption_text
    from workbench.store.runs import load_run

    root = tmp_path / "runs"
    shutil.copytree(Path(__file__).parents[1] / "fixtures" / "pre_layout_run", root / "run")
    dash = Dashboard(root)
    path = dash.write_report()
    assert path == (root / "run" / "report.html").resolve() and path.is_file(), dash.report_status.object
    assert dash.report_file.visible and "report written" in dash.report_status.object
    page = path.read_text(encoding="utf-8")
    caption = caption_text(history_figure(load_run(root / "run").history))
    assert page.count("Plotly.newPlot") >= 4  # history, accuracy, gap and fairness figures
    assert "Training history" in page and caption.split(" (")[0] in page
    assert "Share of the test split" in page  # the accuracy figure's caption
    assert not re.search(r"<script[^>]*\bsrc=[\"']?https?:", page)  # nothing fetched when it opens


def test_gap_tab_has_a_pair_selector(tmp_path: Path) -> None:
    from widgets.dashboard import GapTab
    from workbench.store.results import load_result

    root = tmp_path / "runs"
    shutil.copytree(Path(__file__).parents[1] / "fixtures" / "pre_layout_run", root / "run")
    gap = load_result(
        root / "run" / "results" / "gap"
    )  # one pair; add "each modality against the rest"
    for name in ("gaps", "gmm", "summary"):
        frame = getattr(gap, name)
        setattr(gap, name, pd.concat([frame, frame.assign(pair="records-rest")], ignore_index=True))
    gap.pairs = [*gap.pairs, "records-rest"]
    gap.save(root / "run" / "results" / "gap")
    dash = Dashboard(root)
    gap = next(t for t in dash.tabs if isinstance(t, GapTab))
    pairs = list(gap.pair_select.options.values())
    assert len(pairs) >= 2 and any(p.endswith("-rest") for p in pairs)
    gap.pair_select.value = pairs[-1]
    assert gap.pair_view[0].object.layout.title.text.startswith(
        f"Modality gap {html.escape(pairs[-1])}"
    )


def test_busy_port_is_one_line_and_closed_sockets_are_quiet(capsys) -> None:
    import logging
    import socket

    from tornado.websocket import WebSocketClosedError

    from widgets.dashboard import _QuietClosedSockets

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--runs-dir", "nowhere", "--port", str(port)]) == 2
    out, err = capsys.readouterr()
    err = err.strip()
    assert "workbench dashboard on" not in out  # no banner saying it listens
    assert (
        err.count("\n") == 0
        and f"port {port} on 127.0.0.1 is already in use" in err
        and "Traceback" not in err
    )
    try:
        raise WebSocketClosedError()
    except WebSocketClosedError:
        import sys

        closed = logging.LogRecord(
            "tornado.application", logging.ERROR, "", 0, "Uncaught exception", (), sys.exc_info()
        )
    other = logging.LogRecord(
        "tornado.application", logging.ERROR, "", 0, "something else broke", (), None
    )
    assert (
        _QuietClosedSockets().filter(closed) is False
        and _QuietClosedSockets().filter(other) is True
    )


def test_warm_up_leaves_no_import_for_the_first_sessions_figures(runs_root: Path) -> None:
    """The served page's first figures imported plotly.basewidget -> nbformat -> jsonschema on the
    server's event loop (1.7-7 s; the cold first page took 5-9 s): ``serve`` warms that up before listening."""
    import subprocess
    import sys

    script = (
        "import json, sys; from pathlib import Path; import plotly.graph_objects as go, panel as pn\n"
        "from widgets.dashboard import _warm_up\n"
        f"_warm_up(Path({str(runs_root)!r}))\n"
        "before = set(sys.modules)\n"
        "pn.pane.Plotly(go.Figure(go.Bar(y=[1]))).get_root()  # what a session does with each figure\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in set(sys.modules) - before})))\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]),
                                                                     os.environ.get("PYTHONPATH")])))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    imported = json.loads(out.stdout.strip().splitlines()[-1])
    assert not {"nbformat", "jsonschema", "IPython"} & set(imported), imported
