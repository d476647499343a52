"""Parallel Optuna trials on Dask (the sweep layer's cluster) with the study hosted by the scheduler
(optuna-integration's DaskStorage): a toy objective's known optimum with parallel workers, exactly the
asked number of trials, the study's trials equal the run folders it wrote (through ``workbench tune
--storage dask --scheduler ADDRESS``)."""

from __future__ import annotations

import time

import numpy as np
import pytest

optuna = pytest.importorskip("optuna", reason="Optuna is not installed (pip install optuna)")
pytest.importorskip("optuna_integration", reason="optuna-integration is not installed (pip install optuna-integration)")
distributed = pytest.importorskip("distributed")

from workbench.cli import main  # noqa: E402
from workbench.jobs.tune import optimize, run_value, tune  # noqa: E402
from workbench.store.runs import RunStore  # noqa: E402

SPACE = {"x": {"low": -2.0, "high": 2.0}, "y": {"low": -5.0, "high": 5.0}}


def bowl(params: dict, trial) -> float:
    """Maximum 0 at (x, y) = (0.3, -1.5); sleeps a little so that trials overlap across workers."""
    time.sleep(0.05)
    return -((params["x"] - 0.3) ** 2) - 0.1 * (params["y"] + 1.5) ** 2


def slow(params: dict, trial) -> float:
    time.sleep(0.4)
    return -((params["x"] - 0.5) ** 2)


@pytest.fixture
def threads_cluster():
    with distributed.LocalCluster(n_workers=3, threads_per_worker=1, processes=False, dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(cluster) as client:
        yield cluster, client


def _overlapping(trials) -> int:
    """Pairs of trials that ran at the same time (evidence of parallel workers)."""
    spans = sorted((t.datetime_start, t.datetime_complete) for t in trials)
    return sum(b[0] < a[1] for a, b in zip(spans, spans[1:], strict=False))


def test_parallel_workers_find_the_known_optimum_in_exactly_n_trials(threads_cluster):
    _, client = threads_cluster
    study = optimize(bowl, SPACE, n_trials=60, storage="dask:", study_name="bowl", seed=0, client=client)
    trials = study.get_trials(deepcopy=False)
    assert type(study._storage).__name__ == "DaskStorage"
    assert len(trials) == 60 and {t.state.name for t in trials} == {"COMPLETE"}  # the lock: no overshoot
    assert sorted(t.number for t in trials) == list(range(60))
    assert _overlapping(trials) >= 10  # three workers ran trials side by side
    # parallel TPE is not reproducible (the order trials finish in varies): over 15 repeats the best
    # regret was at most 0.010 (one CI run saw 0.013); 0.03 bounds it, and the parameters follow from
    # the bowl's shape (regret < r means |x - 0.3| < sqrt(r) and |y + 1.5| < sqrt(10 r))
    regret = 0.03
    assert study.best_value > -regret
    assert abs(study.best_params["x"] - 0.3) < regret**0.5 and abs(study.best_params["y"] + 1.5) < (10 * regret) ** 0.5


def test_dask_storage_needs_a_cluster():
    with pytest.raises(ValueError, match="storage 'dask'"):
        optimize(bowl, SPACE, n_trials=2, storage="dask", study_name="x")
    with pytest.raises(ValueError, match="n_workers"):
        tune("synthetic-imbalance", {"alpha": {"low": 0.1, "high": 1.0}}, storage="dask", n_workers=1)


@pytest.mark.slow
def test_cli_tune_on_a_dask_scheduler_trials_equal_the_run_folders(tmp_path, threads_cluster, capsys):
    cluster, client = threads_cluster
    runs = tmp_path / "runs"
    args = ["--runs-dir", str(runs), "tune", "--dataset", "synthetic-imbalance", "--strategy", "ogm_ge",
            "--space", "alpha=0.1:1.0", "--trials", "4", "--epochs", "2", "--seeds", "0,1", "--dataset-param",
            "n=200", "--no-prune"]
    assert main([*args, "--storage", "dask", "--scheduler", cluster.scheduler_address,
                 "--save", str(tmp_path / "study")]) == 0
    out = capsys.readouterr().out
    assert "dask:sqlite:///" in out
    from workbench.jobs.tune import TuneResult

    res = TuneResult.load(tmp_path / "study")
    store = RunStore(runs)
    assert len(res.trials) == 4 and (res.trials["state"] == "COMPLETE").all()
    assert sorted(res.runs["run_id"]) == sorted(r for r in store.run_ids() if store.is_complete(r))
    assert len(res.runs) == 8  # 4 trials x 2 seeds, a folder each
    for number, part in res.runs.groupby("number"):
        loaded = [store.load(r) for r in part["run_id"]]
        alpha = res.trials.set_index("number").loc[number, "alpha"]
        assert all(r.config["train"]["strategy_params"]["alpha"] == pytest.approx(alpha) for r in loaded)
        assert res.trials.set_index("number").loc[number, "value"] == pytest.approx(
            np.mean([run_value(r.history, "heldout_acc") for r in loaded]))
    # the scheduler wrote the study into the run store's SQLite file: it outlives the Dask storage, and the
    # same search in this process (no Dask) resumes it complete and trains nothing
    db = runs / ".studies" / f"{res.study_name}.db"
    assert len(optuna.load_study(study_name=res.study_name, storage=f"sqlite:///{db}").trials) == 4
    mtimes = {r: (runs / r / "status.json").stat().st_mtime_ns for r in store.run_ids()}
    again = tune("synthetic-imbalance", {"alpha": {"low": 0.1, "high": 1.0}}, n_trials=4, epochs=2, seeds=[0, 1],
                 strategy="ogm_ge", dataset_params={"n": 200}, runs_dir=runs, prune=False)
    assert again.study_name == res.study_name and len(again.trials) == 4
    assert {r: (runs / r / "status.json").stat().st_mtime_ns for r in store.run_ids()} == mtimes


@pytest.mark.slow
def test_a_killed_dask_worker_loses_no_completed_trial(tmp_path, monkeypatch):
    """SIGKILL one of two worker processes mid-study: every trial completed before the kill is kept,
    the interrupted trial is marked failed (SQLite heartbeats), the nanny's fresh worker and the other
    one finish the study with exactly ``n_trials`` complete, and nothing is left running."""
    import os
    import signal
    import threading

    storage = f"sqlite:///{tmp_path}/killed.db"
    n_trials = 16
    # worker processes unpickle the objective by module name: a module they can import (the test
    # module itself is not on their path)
    (tmp_path / "killed_objective.py").write_text("import time\n\n\ndef slow(params, trial):\n"
                                                  "    time.sleep(0.4)\n    return -(params['x'] - 0.5) ** 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.getcwd(), os.environ.get("PYTHONPATH", "")]))
    from killed_objective import slow as objective
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=50) as cluster, distributed.Client(cluster) as client:
        pids = client.run(os.getpid)
        out: dict = {}
        # created here first: the poll below and the search would otherwise race to create the tables
        optuna.create_study(study_name="killed", storage=storage, direction="maximize")

        def search():
            try:
                out["study"] = optimize(objective, {"x": {"low": 0.0, "high": 1.0}}, n_trials=n_trials, storage=storage,
                                        study_name="killed", heartbeat_s=1, grace_s=2, client=client)
            except BaseException as exc:  # surfaced by the assertion below
                out["error"] = exc

        thread = threading.Thread(target=search, daemon=True)
        thread.start()
        deadline, before = time.monotonic() + 180, set()
        while time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.2)
            try:
                trials = optuna.load_study(study_name="killed", storage=storage).get_trials(deepcopy=False)
            except KeyError:  # the study is not created yet
                continue
            done = {(t.number, t.params["x"], t.value) for t in trials if t.state.name == "COMPLETE"}
            if len(done) >= 4 and any(t.state.name == "RUNNING" for t in trials):
                before = done
                os.kill(next(iter(pids.values())), signal.SIGKILL)  # mid-trial: one is running
                break
        assert before, f"the study never reached 4 complete trials with one running: {out.get('error')!r}"
        thread.join(timeout=240)
        assert not thread.is_alive(), "the study did not finish after a worker was killed"
    assert "error" not in out, out.get("error")
    trials = optuna.load_study(study_name="killed", storage=storage).get_trials(deepcopy=False)
    after = {(t.number, t.params["x"], t.value) for t in trials if t.state.name == "COMPLETE"}
    assert before <= after  # no completed trial lost
    assert len(after) == n_trials  # the lost one was replaced, none overshoot
    assert not [t for t in trials if t.state.name == "RUNNING"]
    assert {t.state.name for t in trials} <= {"COMPLETE", "FAIL"}
