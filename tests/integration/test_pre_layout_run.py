"""A run folder written before the layout move (committed fixture) still loads and draws."""

from __future__ import annotations

import shutil
from pathlib import Path

from widgets.figures.result import result_figures
from workbench import load_run
from workbench.analyses.fairness import FairnessResult
from workbench.analyses.gap import GapResult
from workbench.store.results import load_result

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "pre_layout_run"


def test_pre_layout_run_loads_and_draws(tmp_path):
    run_dir = tmp_path / FIXTURE.name
    shutil.copytree(FIXTURE, run_dir)  # loading must not need to write, but never touch the fixture
    run = load_run(run_dir)
    assert run.modalities == ["records", "imaging"]
    assert sorted(run.result_names()) == ["fairness", "gap"]
    results = {name: load_result(run_dir / "results" / name) for name in run.result_names()}
    assert isinstance(results["gap"], GapResult) and isinstance(results["fairness"], FairnessResult)
    for name, result in results.items():
        figures = result_figures(name, result)
        assert figures and all(len(fig.data) > 0 for fig in figures.values()), name
    model = run.load_model()
    assert sum(p.numel() for p in model.parameters()) > 0
