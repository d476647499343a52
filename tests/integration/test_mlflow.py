"""MLflow: a sweep exported to a real file store and to a real ``mlflow server`` reads back equal to the
run store (params, per-epoch and final metrics, configuration tags, analysis tables as artifacts),
and the trainer callback logs every epoch. Read back through ``mlflow.search_runs`` and MLflow's client.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

mlflow = pytest.importorskip("mlflow", reason="MLflow is not installed (pip install mlflow-skinny, or mlflow for "
                                              "the server test)")

from workbench.analyses.gap import gap_from_run  # noqa: E402
from workbench.cli import main  # noqa: E402
from workbench.jobs.mlflow_tracking import MLflowCallback, export, resolve_tracking_uri  # noqa: E402
from workbench.jobs.sweep import sweep  # noqa: E402
from workbench.store.runs import RunStore  # noqa: E402

GRID = {"dataset": "synthetic-imbalance", "strategy": ["naive", "ogm_ge"], "seed": [0, 1], "epochs": 2,
        "dataset_params": {"n": 200}}


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A 2 strategies x 2 seeds sweep; one run also holds a saved gap analysis (an artifact to check)."""
    root = tmp_path_factory.mktemp("runs")
    table = sweep(GRID, runs_dir=root, workers=1, progress=False)
    store = RunStore(root)
    runs = [store.load(r) for r in table["run_id"]]
    runs[0].save_result("gap", gap_from_run(runs[0]))
    return root, table.attrs["sweep_id"], runs


def search(uri: str, experiment: str) -> pd.DataFrame:
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        return mlflow.search_runs(experiment_names=[experiment])
    finally:
        mlflow.set_tracking_uri(previous)


def assert_store_equals_runs(uri: str, experiment: str, runs, sweep_id: str) -> None:
    found = search(uri, experiment)
    assert sorted(found["tags.workbench.run_id"]) == sorted(r.run_id for r in runs)
    client = mlflow.MlflowClient(tracking_uri=uri)
    for run in runs:
        row = found[found["tags.workbench.run_id"] == run.run_id].iloc[0]
        train = run.config["train"]
        # parameters: the stored training config (MLflow keeps them as strings; ours are JSON)
        for key in ("lr", "epochs", "seed", "batch_size", "hidden", "weight_decay"):
            assert json.loads(row[f"params.{key}"]) == train[key], key
        for key in ("strategy", "fusion", "optimizer"):
            assert row[f"params.{key}"] == train[key]
        assert row["params.dataset"] == run.config["dataset"] and json.loads(row["params.dataset_params.n"]) == 200
        # final metrics: every split and model of metrics.json
        for split, values in run.metrics.items():
            for model, value in values.items():
                name = f"{split}_n" if model == "n" else f"{split}_acc_{model}"
                assert row[f"metrics.{name}"] == pytest.approx(value, abs=1e-12), name
        # per-epoch metrics, per-modality accuracies included: MLflow's history equals run.history
        per_modality = [c for c in run.history.columns if c.startswith("heldout_acc_")]
        assert len(per_modality) == len(run.modalities)
        for column in ["train_loss", "heldout_loss", "heldout_acc", *per_modality]:
            hist = sorted(client.get_metric_history(row["run_id"], column), key=lambda m: m.step)
            assert [m.step for m in hist] == run.history["epoch"].tolist()
            assert [m.value for m in hist] == pytest.approx(run.history[column].tolist(), abs=1e-12)
        # grouping tags
        assert row["tags.workbench.seed"] == str(train["seed"]) and row["tags.workbench.sweep"] == sweep_id
        assert row["tags.workbench.config"] == f"synthetic-imbalance | {train['strategy']} | concat | 2 ep"
        assert row["status"] == "FINISHED"
    # the seeds of one configuration share its tags, two configurations -> two groups of two
    groups = found.groupby("tags.workbench.config")["tags.workbench.config_key"].agg(["nunique", "size"])
    assert groups["nunique"].tolist() == [1, 1] and groups["size"].tolist() == [2, 2]
    # the analysis tables as artifacts
    with_gap = runs[0]
    mid = found.loc[found["tags.workbench.run_id"] == with_gap.run_id, "run_id"].iloc[0]
    names = {a.path for a in client.list_artifacts(mid, "results/gap")}
    assert {"results/gap/summary.csv", "results/gap/gmm.csv", "results/gap/result.json"} <= names
    local = Path(client.download_artifacts(mid, "results/gap/summary.csv"))
    saved = pd.read_parquet(with_gap.path / "results" / "gap" / "summary.parquet")
    pd.testing.assert_frame_equal(pd.read_csv(local), saved, check_dtype=False, check_exact=False, rtol=1e-9)
    assert {a.path for a in client.list_artifacts(mid)} >= {"config.json", "metrics.json", "history.csv", "results"}


def test_sweep_exported_to_a_file_store_reads_back_equal(swept, tmp_path, capsys):
    root, sweep_id, runs = swept
    store = tmp_path / "mlruns"
    assert main(["--runs-dir", str(root), "export", "mlflow", sweep_id, "--tracking-uri", str(store),
                 "--experiment", "paper"]) == 0
    assert "4 run(s) exported" in capsys.readouterr().out
    uri = resolve_tracking_uri(store)
    assert_store_equals_runs(uri, "paper", runs, sweep_id)
    # idempotent by run id: again skips all; --force replaces (still one MLflow run per workbench run)
    again = export(sweep_id, runs_dir=root, tracking_uri=uri, experiment="paper")
    assert (again["status"] == "skipped").all()
    forced = export(sweep_id, runs_dir=root, tracking_uri=uri, experiment="paper", force=True)
    assert (forced["status"] == "exported").all() and set(forced["mlflow_run_id"]).isdisjoint(again["mlflow_run_id"])
    assert len(search(uri, "paper")) == 4


def test_trainer_callback_logs_every_epoch_and_the_final_run(tmp_path):
    from workbench import train

    uri = resolve_tracking_uri(tmp_path / "mlruns")
    with MLflowCallback(tracking_uri=uri, experiment="live") as cb:
        run = train("synthetic-imbalance", dataset_params={"n": 200}, epochs=3, seed=0, progress=False,
                    runs_dir=tmp_path / "runs", callbacks=[cb])
        mid = cb.log_run(run)
    client = mlflow.MlflowClient(tracking_uri=uri)
    logged = client.get_run(mid)
    assert logged.info.status == "FINISHED" and logged.data.tags["workbench.run_id"] == run.run_id
    for column in ["train_loss", "heldout_acc", *(f"heldout_acc_{m}" for m in run.modalities)]:
        hist = sorted(client.get_metric_history(mid, column), key=lambda m: m.step)
        assert [m.step for m in hist] == [1, 2, 3]
        assert [m.value for m in hist] == pytest.approx(run.history[column].tolist(), abs=1e-12)
    assert logged.data.metrics["test_acc_fused"] == pytest.approx(run.metrics["test"]["fused"])
    assert json.loads(logged.data.params["lr"]) == run.config["train"]["lr"]
    assert logged.data.params["dataset"] == "synthetic-imbalance"


def test_callback_marks_a_failed_training_failed(tmp_path):
    uri = resolve_tracking_uri(tmp_path / "mlruns")

    class Ctx:
        config = {"lr": 0.1}

    with pytest.raises(RuntimeError, match="boom"), MLflowCallback(tracking_uri=uri, experiment="x") as cb:
        cb.on_epoch_end(Ctx(), 0, {"epoch": 1, "train_loss": 1.0})
        raise RuntimeError("boom")
    assert mlflow.MlflowClient(tracking_uri=uri).get_run(cb.mlflow_run_id).info.status == "FAILED"


def test_bad_arguments_fail_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="experiment"):
        MLflowCallback(tracking_uri=str(tmp_path), experiment=" ")
    with pytest.raises(ValueError, match="tracking_uri"):
        export("all", runs_dir=tmp_path, tracking_uri="  ")
    assert main(["--runs-dir", str(tmp_path), "export", "mlflow", "no-such-run", "--tracking-uri",
                 str(tmp_path / "m")]) == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path):
    """A real ``mlflow server`` on a free loopback port (file backend, artifacts served); skips, with the
    reason, when it cannot start (e.g. mlflow-skinny without the server's dependencies)."""
    exe = shutil.which("mlflow")
    if exe is None:
        pytest.skip("no mlflow executable on PATH")
    port = _free_port()
    env = {**os.environ, "MLFLOW_ALLOW_FILE_STORE": "true"}
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen([exe, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                             "--backend-store-uri", (tmp_path / "backend").as_uri(),
                             "--artifacts-destination", (tmp_path / "artifacts").as_uri(), "--serve-artifacts"],
                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                tail = (tmp_path / "server.log").read_text()[-400:].strip().splitlines()
                pytest.skip(f"mlflow server exited ({proc.returncode}): {tail[-1] if tail else 'no output'}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.skip("mlflow server did not answer /health within 120 s")
            time.sleep(0.5)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the server and the worker it started, nothing else
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


@pytest.mark.slow
def test_sweep_exported_to_an_mlflow_server_reads_back_equal(swept, mlflow_server):
    root, sweep_id, runs = swept
    table = export(sweep_id, runs_dir=root, tracking_uri=mlflow_server, experiment="served")
    assert (table["status"] == "exported").all() and len(table) == 4
    assert_store_equals_runs(mlflow_server, "served", runs, sweep_id)
