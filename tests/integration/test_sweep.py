"""Sweeps on Dask: same numbers as in-process, faults contained, idempotent re-runs."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

import numpy as np
import pandas as pd
import pytest

import workbench.jobs.sweep
import workbench.training.train
from workbench.jobs.sweep import Cell, SweepError, expand_grid, load_sweep, open_client, sweep
from workbench.store.runs import RunStore

GRID = {"dataset": ["synthetic-imbalance", "synthetic-xor"], "fusion": ["concat", "late"], "seed": [0, 1],
        "epochs": 2, "dataset_params": {"n": 200}}


@pytest.fixture(scope="module")
def client():
    """Two single-threaded worker processes on loopback, through the sweep's own LocalCluster path."""
    with open_client(workers=2, dashboard=False) as cl:
        assert len(cl.scheduler_info()["workers"]) == 2
        yield cl


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    root = tmp_path_factory.mktemp("seq")
    return root, sweep(GRID, runs_dir=root, workers=1, progress=False)


def test_expand_grid_is_the_cartesian_product():
    cells = expand_grid({**GRID, "lr": 0.01, "strategy_params": {"naive": {"unimodal_weight": 0.5}}})
    assert len(cells) == 8 and len({c.run_id for c in cells}) == 8
    assert {(c.dataset, c.fusion, c.seed) for c in cells} == {
        (d, f, s) for d in GRID["dataset"] for f in GRID["fusion"] for s in GRID["seed"]}
    assert all(c.train_params == {"lr": 0.01} and c.strategy_params == {"unimodal_weight": 0.5} for c in cells)
    with pytest.raises(SweepError, match="dataset"):
        expand_grid({"seed": [0]})


def test_cluster_sweep_equals_sequential_run(client, sequential, tmp_path):
    seq_root, seq = sequential
    par = sweep(GRID, runs_dir=tmp_path, client=client, progress=False)
    assert list(par["status"]) == ["complete"] * 8 and list(seq["status"]) == ["complete"] * 8
    assert list(par["run_id"]) == list(seq["run_id"])
    acc = [c for c in seq.columns if c.startswith("acc_")]
    pd.testing.assert_frame_equal(par[acc], seq[acc])
    for rid in seq["run_id"]:
        a, b = RunStore(seq_root).load(rid), RunStore(tmp_path).load(rid)
        np.testing.assert_allclose(a.history["train_loss"], b.history["train_loss"], rtol=1e-5)
        assert (a.predictions["pred"] == b.predictions["pred"]).all()
    assert load_sweep(par.attrs["sweep_id"], tmp_path).run_ids() == list(par["run_id"])


def test_rerun_starts_no_training_and_redoes_failed(sequential, monkeypatch):
    root, first = sequential
    store = RunStore(root)
    redo = first["run_id"].iloc[3]
    store.mark_failed(redo, {}, "simulated failure")
    trained = []
    real_train = workbench.training.train.train
    monkeypatch.setattr(workbench.training.train, "train", lambda *a, **k: trained.append(k) or real_train(*a, **k))
    again = sweep(GRID, runs_dir=root, workers=1, progress=False)
    assert len(trained) == 1 and trained[0]["seed"] == first["seed"].iloc[3]
    assert again.set_index("run_id")["status"].to_dict() == {
        rid: "complete" if rid == redo else "skipped" for rid in first["run_id"]}
    assert store.is_complete(redo)
    # a finished sweep: no training and no cluster at all
    monkeypatch.setattr(workbench.jobs.sweep, "open_client", None)
    third = sweep(GRID, runs_dir=root, workers=2, progress=False)
    assert set(third["status"]) == {"skipped"} and len(trained) == 1
    pd.testing.assert_series_equal(third["acc_fused"], first["acc_fused"])


def test_failing_cells_do_not_stop_the_others(client, tmp_path):
    base = {"dataset": "synthetic-imbalance", "epochs": 2, "dataset_params": {"n": 200}}
    cells = [Cell(**base), Cell(**base, strategy="no_such_strategy"),
             Cell(**base, train_params={"lr": 1e30}), Cell(**base, fusion="bogus")]
    table = sweep(cells, runs_dir=tmp_path, client=client, progress=False).set_index("run_id")
    assert list(table["status"]) == ["complete", "failed", "failed", "failed"]
    errors = list(table["error"].iloc[1:])
    assert "unknown strategy 'no_such_strategy'" in errors[0]
    assert errors[1].startswith("ValueError: lr must be a finite number") and "unknown fusion" in errors[2]
    store = RunStore(tmp_path)
    for rid in table.index[1:]:
        assert store.status(rid) == "failed" and not store.is_complete(rid)
    assert "FAILED" in workbench.jobs.sweep.summarize(table.reset_index())


def _kill_when_training(client, root: str, run_id: str, seen: dict) -> None:
    """Kill the worker process that runs ``run_id`` once its first epoch checkpoint exists."""
    ckpt = os.path.join(root, ".incomplete", run_id, "checkpoint.pt")
    deadline = time.time() + 120
    while time.time() < deadline:
        busy = [w for w, keys in client.processing().items() if f"cell-{run_id}" in keys]
        if busy and os.path.exists(ckpt):
            pid = client.run(os.getpid, workers=busy)[busy[0]]
            os.kill(pid, signal.SIGKILL)
            seen["killed"] = pid
            seen["complete_after_kill"] = RunStore(root).is_complete(run_id)
            seen["listed"] = RunStore(root).table().query("status == 'complete'")["run_id"].tolist()
            return
        time.sleep(0.02)


def test_killed_worker_leaves_no_complete_run_and_cell_is_retried(client, tmp_path):
    grid = {"dataset": "synthetic-imbalance", "seed": [0, 1], "epochs": 30, "dataset_params": {"n": 200}}
    victim = expand_grid(grid)[0].run_id
    seen: dict = {}
    watcher = threading.Thread(target=_kill_when_training, args=(client, str(tmp_path.resolve()), victim, seen))
    watcher.start()
    table = sweep(grid, runs_dir=tmp_path, client=client, progress=False, retries=1)
    watcher.join()
    assert "killed" in seen, "the worker was never killed"
    assert seen["complete_after_kill"] is False and victim not in seen["listed"]
    assert list(table["status"]) == ["complete", "complete"]
    run = RunStore(tmp_path).load(victim)
    assert len(run.history) == 30 and run.metrics["test"]["n"] == 40


def test_unreachable_scheduler_fails_fast(tmp_path):
    with socket.socket() as s:  # a free port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.perf_counter()
    with pytest.raises(SweepError, match=f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}"):
        sweep(GRID, runs_dir=tmp_path, scheduler=f"tcp://127.0.0.1:{port}", connect_timeout=2, progress=False)
    assert time.perf_counter() - t0 < 15
