"""An alignment run is a first-class run: saved, reloaded, drawn by the run panel and the served
dashboard (its overview shows top-1 retrieval accuracy per direction; a saved retrieval analysis
is a tab with its figures), trained from the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from widgets.dashboard import Dashboard
from widgets.figures.retrieval import report_figures
from widgets.panels.base import RunPanel
from workbench import load_dataset, train
from workbench.analyses.retrieval import retrieval_analysis, retrieval_shapley
from workbench.cli.main import main
from workbench.store.runs import load_run


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    run = train(load_dataset("xor-trimodal", n=600, d=2, p=1.0), task="alignment", task_params={"dim": 8},
                epochs=3, runs_dir=root, progress=False, hidden=16, embed=8)
    run.save_result("retrieval", retrieval_analysis(run, n_boot=50, n_points=30))
    run.save_result("shapley_b", retrieval_shapley(run, target="b"))
    return root, run


def test_a_reloaded_alignment_run_scores_every_direction(saved):
    root, run = saved
    loaded = load_run(run.path)
    acc = loaded.accuracy()
    assert set(acc["kind"]) == {"1->1", "2->1"} and "a+c->b" in set(acc["model"])
    assert acc.equals(run.accuracy())
    assert (acc["measure"] == "top-1 retrieval accuracy (R@1)").all()


def test_dashboard_shows_the_retrieval_tab_and_the_overview_in_retrieval_terms(saved):
    root, run = saved
    dash = Dashboard(root)
    names = [t.name for t in dash.tabs]
    assert names == ["overview", "retrieval", "shapley_b", "compare runs"]
    assert dash.accuracy_plot.object.layout.title.text.startswith("Top-1 retrieval accuracy (R@1)")

    loaded = load_run(run.path)
    from workbench.store.results import load_result

    result = load_result(loaded.path / "results" / "retrieval")
    expected = [f.layout.title.text for f in report_figures(result)]
    assert expected[0].startswith("Retrieval matrix") and any("Embedding map" in t for t in expected)
    panel = RunPanel(loaded)  # the JupyterLab panel builds too
    assert panel.accuracy.layout.title.text.startswith("Top-1 retrieval accuracy")


def test_cli_trains_an_alignment_run(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv("WORKBENCH_RUNS", str(tmp_path / "runs"))
    code = main(["train", "--dataset", "xor-trimodal", "--task", "alignment", "--task-param", "dim=8",
                 "--epochs", "1", "--optimizer", "adamw", "--schedule", "cosine", "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "a+c->b" in out


def test_html_report_of_an_alignment_run_heads_its_scores_in_retrieval_terms(saved, tmp_path):
    from widgets.summary import run_takeaways_html
    from workbench.cli.report import render_run_report

    root, run = saved
    loaded = load_run(run.path)
    html = render_run_report(loaded.path, tmp_path / "report.html").read_text()
    assert "Top-1 retrieval accuracy (R@1) by model: 1-&gt;1, 2-&gt;1" in html
    assert run_takeaways_html(loaded) in html
    assert "<h3>retrieval</h3>" in html and "<h3>shapley_b</h3>" in html and "Traceback" not in html
