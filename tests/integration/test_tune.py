"""Optuna search: a toy objective's known optimum, no completed trial lost when a worker is killed,
and a study's trials equal the run folders it wrote (validation metric, sweep run ids)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

optuna = pytest.importorskip("optuna", reason="Optuna is not installed (pip install optuna)")

from workbench.cli import main  # noqa: E402
from workbench.jobs.tune import (  # noqa: E402
    list_studies,
    load_study_result,
    optimize,
    parse_space,
    run_value,
    tune,
)
from workbench.store.runs import RunStore  # noqa: E402


def test_toy_objective_finds_the_known_optimum(tmp_path):
    # maximum 0 at (x, y) = (0.3, -1.5); TPE with a fixed seed and 60 trials
    study = optimize(lambda p, t: -((p["x"] - 0.3) ** 2) - 0.1 * (p["y"] + 1.5) ** 2,
                     {"x": {"low": -2.0, "high": 2.0}, "y": {"low": -5.0, "high": 5.0}}, n_trials=60,
                     storage=f"sqlite:///{tmp_path}/toy.db", study_name="toy", seed=0)
    assert len(study.trials) == 60
    assert abs(study.best_params["x"] - 0.3) < 0.1 and abs(study.best_params["y"] + 1.5) < 0.5
    assert study.best_value > -0.02
    # resuming a finished study runs nothing more
    again = optimize(lambda p, t: 0.0, {"x": {"low": -2.0, "high": 2.0}, "y": {"low": -5.0, "high": 5.0}},
                     n_trials=60, storage=f"sqlite:///{tmp_path}/toy.db", study_name="toy")
    assert len(again.trials) == 60 and again.best_params == study.best_params


WORKER = textwrap.dedent("""
    import sys, time
    from workbench.jobs.tune import optimize

    def slow(p, trial):
        time.sleep(0.4)
        return -(p["x"] - 0.5) ** 2

    optimize(slow, {"x": {"low": 0.0, "high": 1.0}}, n_trials=int(sys.argv[2]), storage=sys.argv[1],
             study_name="killed", heartbeat_s=1, grace_s=2)
""")


def _finished(storage: str) -> list:
    study = optuna.load_study(study_name="killed", storage=storage)
    return [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]


def test_a_killed_worker_loses_no_completed_trial(tmp_path):
    storage = f"sqlite:///{tmp_path}/killed.db"
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, str(script), storage, "50"], env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            time.sleep(0.3)
            try:
                if len(_finished(storage)) >= 4:
                    break
            except KeyError:  # the study is not created yet
                continue
        os.kill(proc.pid, signal.SIGKILL)  # mid-study, most likely inside a trial
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = {(t.number, t.params["x"], t.value) for t in _finished(storage)}
    assert len(before) >= 4
    time.sleep(3)  # past the grace period: the trial the kill interrupted is stale
    study = optimize(lambda p, t: -(p["x"] - 0.5) ** 2, {"x": {"low": 0.0, "high": 1.0}}, n_trials=len(before) + 3,
                     storage=storage, study_name="killed", heartbeat_s=1, grace_s=2)
    after = {(t.number, t.params["x"], t.value) for t in _finished(storage)}
    assert before <= after and len(after) == len(before) + 3  # every completed trial kept, only the rest run
    assert not [t for t in study.get_trials(deepcopy=False) if t.state.name == "RUNNING"]


def test_a_trial_killed_before_its_first_heartbeat_is_failed_on_resume(tmp_path):
    # Optuna's fail_stale_trials skips a RUNNING trial that has no heartbeat row; a process killed
    # between creating a trial and its first heartbeat left one (seen in CI)
    storage = f"sqlite:///{tmp_path}/s.db"
    optimize(lambda p, t: p["x"], {"x": {"low": 0.0, "high": 1.0}}, n_trials=2, storage=storage, study_name="s",
             heartbeat_s=1, grace_s=1)
    study = optuna.load_study(study_name="s", storage=storage)
    orphan = study._storage.create_new_trial(study._study_id)  # RUNNING, never beaten
    fresh_now = optimize(lambda p, t: p["x"], {"x": {"low": 0.0, "high": 1.0}}, n_trials=2, storage=storage,
                         study_name="s", heartbeat_s=1, grace_s=60)
    assert fresh_now._storage.get_trial(orphan).state.name == "RUNNING"  # within its grace period: kept
    time.sleep(1.5)
    study = optimize(lambda p, t: p["x"], {"x": {"low": 0.0, "high": 1.0}}, n_trials=3, storage=storage,
                     study_name="s", heartbeat_s=1, grace_s=1)
    states = [t.state.name for t in study.get_trials(deepcopy=False)]
    assert states.count("COMPLETE") == 3 and states.count("FAIL") == 1 and "RUNNING" not in states


@pytest.mark.slow
def test_trials_equal_the_run_folders_and_rerun_trains_nothing(tmp_path, capsys):
    runs = tmp_path / "runs"
    kwargs = dict(n_trials=3, epochs=2, seeds=[0, 1], strategy="ogm_ge", dataset_params={"n": 200}, runs_dir=runs,
                  prune=False)
    res = tune("synthetic-imbalance", {"alpha": {"low": 0.1, "high": 1.0}}, **kwargs)
    store = RunStore(runs)
    assert (res.trials["state"] == "COMPLETE").all() and len(res.trials) == 3
    assert sorted(res.runs["run_id"]) == sorted(r for r in store.run_ids() if store.is_complete(r))
    assert len(res.runs) == 6  # 3 trials x 2 seeds, a folder each
    for number, part in res.runs.groupby("number"):
        loaded = [store.load(r) for r in part["run_id"]]
        alpha = res.trials.set_index("number").loc[number, "alpha"]
        assert all(r.config["train"]["strategy_params"]["alpha"] == pytest.approx(alpha) for r in loaded)
        assert sorted(r.config["train"]["seed"] for r in loaded) == [0, 1]
        # the trial's value: mean over seeds of the validation metric the run keeps
        assert res.trials.set_index("number").loc[number, "value"] == pytest.approx(
            np.mean([run_value(r.history, "heldout_acc") for r in loaded]))
        assert all(r.config["train"]["patience"] == 2 for r in loaded)  # a validation split was held out
    assert res.best_value == res.trials["value"].max()
    # the sensitivity view (paper and interactive) draws the sensitivity table
    from matplotlib.container import ErrorbarContainer

    from widgets.figures import figures_for_result
    from widgets.paper import paper_figures

    sens = res.sensitivity()
    assert len(sens) == 3 and (sens["n_seeds"] == 2).all()
    (paper,) = paper_figures(res)
    ax = paper.figure.axes[0]
    means = next(ln for ln in ax.lines if ln.get_gid() == "means")
    np.testing.assert_allclose(means.get_xdata(), sens["setting"].to_numpy(float))
    np.testing.assert_allclose(means.get_ydata(), sens["mean"].to_numpy(float))
    segs = [np.asarray(sg) for c in ax.containers if isinstance(c, ErrorbarContainer) for sg in c.lines[2][0].get_segments()]
    np.testing.assert_allclose([sg[:, 1].min() for sg in segs], sens["seed_min"])
    np.testing.assert_allclose([sg[:, 1].max() for sg in segs], sens["seed_max"])
    (interactive,) = figures_for_result("tune", res)
    np.testing.assert_allclose(np.asarray(interactive.data[0].y, float), sens["mean"].to_numpy(float))
    assert "Never the calibration or test split" in paper.caption
    assert res.save_figures(tmp_path / "figs")[0].read_bytes().startswith(b"%PDF-")
    # the same search again, through the CLI: the study resumes complete, no run is trained again
    mtimes = {r: (runs / r / "status.json").stat().st_mtime_ns for r in store.run_ids()}
    args = ["--runs-dir", str(runs), "tune", "--dataset", "synthetic-imbalance", "--strategy", "ogm_ge",
            "--space", "alpha=0.1:1.0", "--trials", "3", "--epochs", "2", "--seeds", "0,1",
            "--dataset-param", "n=200", "--no-prune"]
    assert main(args) == 0
    assert f"study {res.study_name}" in capsys.readouterr().out
    assert {r: (runs / r / "status.json").stat().st_mtime_ns for r in store.run_ids()} == mtimes
    # the same command with --report, as a user runs it (its own process): the study report, nothing trained
    report = tmp_path / "study.html"
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "workbench.cli", *args, "--report", str(report)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert {r: (runs / r / "status.json").stat().st_mtime_ns for r in store.run_ids()} == mtimes
    # the study is saved beside its SQLite file, where the dashboard and the report find it
    assert list_studies(runs) == [res.study_name]
    saved = load_study_result(res.study_name, runs)
    assert saved.best_params == res.best_params
    np.testing.assert_allclose(saved.sensitivity()["mean"], sens["mean"])
    with pytest.raises(ValueError, match="not a saved study"):
        load_study_result("../elsewhere", runs)
    html = report.read_text()
    assert "heldout_acc against alpha" in html and res.study_name in html and "<script src=\"http" not in html
    # the dashboard's compare tab: the study selector and one sensitivity figure per hyperparameter
    from widgets.dashboard import Dashboard

    dash = Dashboard(runs)
    assert dash.study_select.value == res.study_name and dash.study_select.visible
    dash.redraw_compare()
    (pane,) = dash.sensitivity.objects
    np.testing.assert_allclose(np.asarray(pane.object.data[0].y, float), sens["mean"].to_numpy(float))


def test_bad_searches_fail_before_any_training(tmp_path):
    space = {"alpha": {"low": 0.1, "high": 1.0}}
    with pytest.raises(ValueError, match="metric"):
        tune("synthetic-imbalance", space, metric="test_acc", runs_dir=tmp_path)
    with pytest.raises(ValueError, match=r"space\['alpha'\]"):
        tune("synthetic-imbalance", {"alpha": {"low": 1.0, "high": 0.1}}, runs_dir=tmp_path)
    with pytest.raises(ValueError, match=r"space\['seed'\]"):
        tune("synthetic-imbalance", {"seed": [0, 1]}, runs_dir=tmp_path)
    with pytest.raises(ValueError, match="n_trials"):
        tune("synthetic-imbalance", space, n_trials=0, runs_dir=tmp_path)
    with pytest.raises(ValueError, match="--space"):
        parse_space(["alpha=0.1:x"])
    assert not RunStore(tmp_path).run_ids()
