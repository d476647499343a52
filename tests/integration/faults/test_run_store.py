"""Fault catalog of the run store (issue 15, items 7-13): kill -9 mid-run, malformed folders,
bad checkpoints, concurrent trainings, full disks and read-only folders.

Each test asserts the exit code or exception, that the message names the file or parameter,
and what is on disk afterwards (nothing lost, nothing half-written).
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from workbench import RunError, RunStore, load_dataset, load_run, train
from workbench.store.atomic import AtomicWriteError
from workbench.store.runs import RunLockedError, RunWarning, dataset_fingerprint
from workbench.strategies.base import available_strategies, make_strategy
from workbench.training.train import run_id_for
from workbench.training.trainer import TrainConfig

ROOT = Path(__file__).resolve().parents[3]
# every registered strategy, read when the module is collected (before any test registers its own)
STRATEGIES = available_strategies()
# parameters that make each strategy exercise its state within a 4-epoch run on tiny data
STRATEGY_PARAMS = {"gmm_adaptive": {"warmup_epochs": 1}, "mcr": {"num_perms": 4, "ceb_weight": 0.5},
                   "ogm_ge": {"alpha": 0.8}}
TINY = {"hidden": 32, "embed": 16, "batch_size": 32}
DATA = {"dataset": "synthetic-group-noise", "dataset_params": {"n": 300, "dim": 8}}

# One child process (the imports cost ~6 s) forks one grandchild per job; each grandchild trains
# and SIGKILLs itself at the end of epoch ``kill_at``; the child reports how each one died.
CHILD = r"""
import json, os, signal, sys
import torch
torch.set_num_threads(1)
from workbench.training.train import train
from workbench.strategies.base import make_strategy

class KillSelf:
    def __init__(self, at):
        self.at = at

    def on_epoch_end(self, ctx, epoch, row):
        if epoch == self.at:
            os.kill(os.getpid(), signal.SIGKILL)

jobs = json.loads(sys.argv[1])
# warm up once here, so the forked children do not each pay the lazy imports (catalog, strategies)
train(**{**jobs[0][1], "epochs": 1, "save": False, "runs_dir": None})
for _, kw, _ in jobs:
    make_strategy(kw.get("strategy", "naive"), **kw.get("strategy_params", {}))
died = {}
for key, kw, kill_at in jobs:
    pid = os.fork()
    if pid == 0:
        try:
            train(callbacks=[KillSelf(kill_at)], **kw)
        finally:
            os._exit(3)  # only reached when the kill did not happen
    _, status = os.waitpid(pid, 0)
    died[key] = os.WTERMSIG(status) if os.WIFSIGNALED(status) else -os.WEXITSTATUS(status)
print(json.dumps(died))
"""

HOLD_LOCK = r"""
import sys, time
from workbench.store.runs import RunStore
with RunStore(sys.argv[1]).lock(sys.argv[2]):
    print("locked", flush=True)
    time.sleep(120)
"""


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _python(code: str, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], env=_env(), capture_output=True, text=True,
                          timeout=120, **kw)


def _same_run(a, b) -> None:
    """Bit-identical predictions, history (but wall time) and weights."""
    pd.testing.assert_frame_equal(a.predictions, b.predictions, check_exact=True)
    pd.testing.assert_frame_equal(a.history.drop(columns="seconds"), b.history.drop(columns="seconds"),
                                  check_exact=True)
    for (k, p), (_, q) in zip(a.model.state_dict().items(), b.model.state_dict().items(), strict=True):
        assert torch.equal(p, q), k


class CountEpochs:
    def __init__(self):
        self.n = 0

    def on_epoch_end(self, ctx, epoch, row):
        self.n += 1


PATIENCE = {"dataset": "synthetic-imbalance", "dataset_params": {"n": 400, "seed": 1}, **TINY, "epochs": 40,
            "patience": 3, "lr": 0.003, "seed": 0}


def _strategy_kw(strategy: str) -> dict:
    return {**DATA, **TINY, "epochs": 4, "seed": 3, "strategy": strategy,
            "strategy_params": STRATEGY_PARAMS.get(strategy, {})}


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """Every registered strategy (and an early-stopping run) trained in a process killed with
    SIGKILL mid-run: ``key -> (kw with runs_dir, kill_at, signal it died of)``."""
    root = tmp_path_factory.mktemp("killed")
    reference = train(save=False, progress=False, **PATIENCE)
    stop = len(reference.history)
    assert 5 <= stop < PATIENCE["epochs"], stop  # it stops early, late enough to kill before the stop
    # the patience run dies two epochs before its stop: best weights and counter come from the checkpoint
    jobs = [(s, _strategy_kw(s), 2) for s in STRATEGIES] + [("patience", PATIENCE, stop - 2)]
    jobs = [(k, {**kw, "runs_dir": str(root / k), "progress": False}, at) for k, kw, at in jobs]
    out = _python(CHILD, json.dumps(jobs))
    assert out.returncode == 0, out.stderr[-3000:]
    died = json.loads(out.stdout.strip().splitlines()[-1])
    return {k: (kw, at, died[k]) for k, kw, at in jobs} | {"_patience_reference": reference}


def _resume(killed, key: str):
    """Resume a killed run here; returns the run and how many epochs the resume trained."""
    kw, kill_at, signum = killed[key]
    assert signum == signal.SIGKILL
    ckpts = list((Path(kw["runs_dir"]) / ".incomplete").glob("*/checkpoint.pt"))
    assert len(ckpts) == 1
    assert torch.load(ckpts[0], weights_only=True)["epoch"] == kill_at  # plain tensors/containers only
    counter = CountEpochs()
    return train(callbacks=[counter], **kw), counter.n


# -- 7 + 8: crash-resume and saving, for every registered strategy -----------------------------------
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_kill9_mid_run_resumes_bit_identically_and_saves(strategy, killed):
    kw = _strategy_kw(strategy)
    reference = train(save=False, progress=False, **kw)
    resumed, trained = _resume(killed, strategy)
    assert trained == 2  # epochs 3 and 4 only: it did resume
    _same_run(reference, resumed)
    # item 8: the run was saved, and its config records constructor parameters only
    loaded = load_run(resumed.path)
    recorded = loaded.config["strategy"]["params"]
    assert recorded == json.loads(json.dumps(make_strategy(strategy, **kw["strategy_params"]).params()))
    assert not (resumed.path / "checkpoint.pt").exists()


def test_kill9_with_early_stopping_resumes_the_same_stop(killed):
    reference = killed["_patience_reference"]
    resumed, trained = _resume(killed, "patience")
    assert trained == 2 and len(resumed.history) == len(reference.history)  # old code trained on past the stop
    _same_run(reference, resumed)


def test_gmm_adaptive_params_exclude_fits_and_state_is_weights_only():
    ds = load_dataset("synthetic-imbalance", n=200)
    run = train(ds, epochs=3, strategy="gmm_adaptive", strategy_params={"warmup_epochs": 1}, save=False,
                progress=False, **TINY)
    strategy = run.extras["strategy"]
    assert len(strategy.fits) == 2  # past warm-up: the GMMFit objects that broke config.json
    params = strategy.params()
    assert "fits" not in params and params["warmup_epochs"] == 1
    json.dumps(params)
    state = strategy.state_dict()
    torch.save(state, buf := __import__("io").BytesIO())
    buf.seek(0)
    back = torch.load(buf, weights_only=True)
    assert back["fit"]["means"].dtype == torch.float64 and back["phase"] == "adaptive"


def test_unplain_strategy_state_is_refused_with_its_key(tmp_path):
    from workbench.strategies.base import Strategy

    class Leaky(Strategy):
        name = "leaky"

        def state_dict(self):
            return {"fit": object()}

    from workbench.training.trainer import Trainer

    ds = load_dataset("synthetic-imbalance", n=120)
    with pytest.raises(TypeError, match=r"strategy 'leaky' state_dict\(\)\['fit'\] is a object"):
        Trainer(TrainConfig(epochs=1, progress=False, **TINY), strategy=Leaky()).fit(
            ds, ds.split(seed=0), checkpoint_path=tmp_path / "c.pt")


# -- 9: the data fingerprint is part of the run id ---------------------------------------------------
def _folder(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True)
    np.save(path / "a.npy", rng.standard_normal((80, 3)))
    np.save(path / "b.npy", rng.standard_normal((80, 2)))
    np.save(path / "labels.npy", np.arange(80) % 2)
    return path


def test_two_folders_with_the_same_name_get_different_runs(tmp_path):
    one, two = _folder(tmp_path / "x" / "study", 0), _folder(tmp_path / "y" / "study", 1)
    runs = tmp_path / "runs"
    a = train(str(one), epochs=1, runs_dir=runs, progress=False, **TINY)
    b = train(str(two), epochs=1, runs_dir=runs, progress=False, **TINY)
    assert a.config["dataset"] == b.config["dataset"] == "study"
    assert a.run_id != b.run_id
    assert sorted(RunStore(runs).run_ids()) == sorted([a.run_id, b.run_id])  # nothing replaced
    assert load_run(a.path).config["data_fingerprint"] == dataset_fingerprint(load_dataset(str(one)))
    # the same contents under another path are the same run (the id follows the data, not the path)
    same = _folder(tmp_path / "z" / "study", 0)
    assert dataset_fingerprint(load_dataset(str(same))) == a.config["data_fingerprint"]


# -- 10: one process per run -------------------------------------------------------------------------
def test_second_process_on_the_same_run_is_refused(tmp_path):
    from workbench.jobs.sweep import Cell, run_cell

    runs = tmp_path / "runs"
    ds = load_dataset("synthetic-xor", n=200)
    cfg = TrainConfig(epochs=1, progress=False, **TINY)
    run_id = run_id_for(ds.name, cfg, {"n": 200}, fingerprint=dataset_fingerprint(ds))
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(runs), run_id], env=_env(),
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunLockedError, match=rf"another process \(pid {holder.pid}\) is training run {run_id}"):
            train("synthetic-xor", dataset_params={"n": 200}, epochs=1, runs_dir=runs, progress=False, **TINY)
        row = run_cell(Cell("synthetic-xor", epochs=1, dataset_params={"n": 200}, train_params=TINY), str(runs))
        assert row["run_id"] == run_id and row["status"] == "failed" and "another process" in row["error"]
        assert not RunStore(runs).path(run_id).exists()  # the loser wrote nothing (no failed marker)
    finally:
        holder.kill()  # SIGKILL: the kernel drops the flock
        holder.wait()
    run = train("synthetic-xor", dataset_params={"n": 200}, epochs=1, runs_dir=runs, progress=False, **TINY)
    assert run.run_id == run_id and RunStore(runs).is_complete(run_id)


def test_checkpoint_temp_names_are_unique(tmp_path, monkeypatch):
    import workbench.store.atomic as atomic

    seen = []
    real = atomic.tempfile.mkstemp

    def spy(*a, **k):
        fd, name = real(*a, **k)
        seen.append(name)
        return fd, name

    monkeypatch.setattr(atomic.tempfile, "mkstemp", spy)
    train("synthetic-xor", dataset_params={"n": 120}, epochs=2, runs_dir=tmp_path, progress=False, **TINY)
    ckpt_tmps = [Path(s).name for s in seen if ".checkpoint.pt." in s]
    assert len(ckpt_tmps) == 2 and len(set(ckpt_tmps)) == 2 and "checkpoint.tmp" not in ckpt_tmps


# -- 11: malformed run folders -------------------------------------------------------------------------
BREAKS = {
    "status-shape": ("status.json", "[]"),
    "status-value": ("status.json", json.dumps({"status": "complete", "version": "one"})),
    "config-shape": ("config.json", json.dumps({"train": "concat", "dataset": 3})),
    "metrics-corrupt": ("metrics.json", '{"test": {"fused": 0.9'),
    "metrics-shape": ("metrics.json", json.dumps({"test": [0.9, 0.8]})),
    "history-corrupt": ("history.parquet", "PAR1 not parquet"),
}


@pytest.fixture
def broken_store(tmp_path):
    runs = tmp_path / "runs"
    good = train("synthetic-xor", dataset_params={"n": 120}, epochs=1, runs_dir=runs, progress=False, **TINY)
    for name, (file, text) in BREAKS.items():
        folder = runs / f"broken-{name}"
        import shutil

        shutil.copytree(good.path, folder)
        (folder / file).write_text(text)
    return runs, good


@pytest.mark.parametrize("name", sorted(BREAKS))
def test_load_run_names_the_bad_file(broken_store, name):
    runs, _ = broken_store
    file = BREAKS[name][0]
    with pytest.raises(RunError, match=rf"broken-{name}.*{file.replace('.', '[.]')}"):
        load_run(runs / f"broken-{name}")


def test_listing_skips_malformed_runs_with_a_warning(broken_store):
    runs, good = broken_store
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = RunStore(runs).table()
    skipped = [str(w.message) for w in caught if issubclass(w.category, RunWarning)]
    json_breaks = [n for n, (f, _) in BREAKS.items() if f.endswith(".json")]
    assert len(skipped) == len(json_breaks)
    assert all(any(f"broken-{n}" in s and BREAKS[n][0] in s for s in skipped) for n in json_breaks)
    assert good.run_id in set(table["run_id"])
    assert table.loc[table["run_id"] == good.run_id, "test_acc"].item() == good.metrics["test"]["fused"]


def test_cli_runs_lists_the_good_run_despite_broken_ones(broken_store):
    runs, good = broken_store
    out = subprocess.run([sys.executable, "-m", "workbench.cli", "--runs-dir", str(runs), "runs"], env=_env(),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert good.run_id in out.stdout and "Traceback" not in out.stderr
    assert "broken-metrics-corrupt" in out.stderr and "metrics.json" in out.stderr


def test_sweep_survives_a_corrupt_metrics_file_and_keeps_it(tmp_path):
    from workbench.jobs.sweep import sweep

    grid = {"dataset": "synthetic-xor", "seed": [0, 1], "epochs": 1, "dataset_params": {"n": 120}, **TINY}
    first = sweep(grid, runs_dir=tmp_path, workers=1, progress=False)
    victim = first.loc[0, "run_id"]
    (tmp_path / victim / "metrics.json").write_text("{not json")
    with pytest.warns(RunWarning, match=rf"{victim}.*metrics.json"):
        again = sweep(grid, runs_dir=tmp_path, workers=1, progress=False)
    assert dict(zip(again["run_id"], again["status"], strict=True)) == {victim: "complete",
                                                                      first.loc[1, "run_id"]: "skipped"}
    kept = list((tmp_path / ".invalid").iterdir())
    assert [p.name for p in kept] == [f"{victim}.bad-1"] and (kept[0] / "metrics.json").read_text() == "{not json"
    assert RunStore(tmp_path).validate(victim)[2]["test"]["fused"] == again.loc[0, "acc_fused"]


def test_bad_model_weights_name_the_file(tmp_path):
    run = train("synthetic-xor", dataset_params={"n": 120}, epochs=1, runs_dir=tmp_path, progress=False, **TINY)
    (run.path / "model.pt").write_bytes(b"truncated")
    with pytest.raises(RunError, match=r"model[.]pt is not this run's weights"):
        load_run(run.path).load_model()


# -- 12: bad checkpoints are moved aside and training restarts --------------------------------------------
def _interrupted(runs: Path, **kw) -> Path:
    """Train until epoch 1 is checkpointed, then die; returns the checkpoint path."""

    class Interrupt:
        def on_epoch_end(self, ctx, epoch, row):
            if epoch == 1:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(runs_dir=runs, progress=False, callbacks=[Interrupt()], **kw)
    return next((runs / ".incomplete").glob("*/checkpoint.pt"))


class _Evil:
    def __reduce__(self):
        return (print, ("pickled code ran",))


@pytest.mark.parametrize("kind", ["truncated", "pickled", "other-model", "old-format"])
def test_bad_checkpoint_is_kept_aside_and_training_restarts(kind, tmp_path):
    kw = {"dataset": "synthetic-xor", "dataset_params": {"n": 160}, "epochs": 3, **TINY}
    runs = tmp_path / "runs"
    ckpt = _interrupted(runs, **kw)
    if kind == "truncated":
        ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    elif kind == "pickled":
        ckpt.write_bytes(pickle.dumps({"epoch": 1, "model": _Evil()}))
    elif kind == "other-model":
        other = _interrupted(tmp_path / "other", **{**kw, "hidden": 8})
        ckpt.write_bytes(other.read_bytes())
    else:  # a format-1 checkpoint: no early-stopping or strategy state
        state = torch.load(ckpt, weights_only=True)
        torch.save({k: state[k] for k in ("epoch", "model", "optimizer", "generator")}, ckpt)
    bad = ckpt.read_bytes()
    with pytest.warns(RuntimeWarning, match=rf"checkpoint {ckpt}.*moved it to checkpoint[.]bad-1"):
        run = train(runs_dir=runs, progress=False, **kw)
    _same_run(train(save=False, progress=False, **kw), run)
    assert (run.path / "checkpoint.bad-1").read_bytes() == bad  # kept, not deleted
    assert run.extras["checkpoint_problem"].startswith(f"checkpoint {ckpt}")


# -- 13: full disk, read-only folder ---------------------------------------------------------------------
def _leftovers(root: Path) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".probe-")]


def test_full_disk_while_checkpointing_leaves_no_partial_file_and_resumes(tmp_path, monkeypatch):
    import workbench.store.atomic as atomic

    kw = {"dataset": "synthetic-xor", "dataset_params": {"n": 160}, "epochs": 3, **TINY}
    real, calls = atomic._write, []

    def disk_fills_on_second_write(fh, data):
        calls.append(len(data))
        if len(calls) == 2:
            fh.write(data[: len(data) // 3])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fh, data)

    monkeypatch.setattr(atomic, "_write", disk_fills_on_second_write)
    with pytest.raises(AtomicWriteError, match=r"cannot write .*checkpoint[.]pt: No space left on device") as err:
        train(runs_dir=tmp_path, progress=False, **kw)
    assert err.value.errno == errno.ENOSPC
    assert _leftovers(tmp_path) == []
    ckpt = next((tmp_path / ".incomplete").glob("*/checkpoint.pt"))
    assert torch.load(ckpt, weights_only=True)["epoch"] == 1  # the last good checkpoint is intact
    monkeypatch.setattr(atomic, "_write", real)
    _same_run(train(save=False, progress=False, **kw), train(runs_dir=tmp_path, progress=False, **kw))


def test_full_disk_while_writing_the_run_keeps_the_old_run(tmp_path, monkeypatch):
    import workbench.store.atomic as atomic

    kw = {"dataset": "synthetic-xor", "dataset_params": {"n": 160}, "epochs": 1, **TINY}
    old = train(runs_dir=tmp_path, progress=False, **kw)
    before = {p.name: p.read_bytes() for p in old.path.iterdir() if p.is_file()}
    real = atomic._write

    def full(fh, data):
        if data.startswith(b"PAR1"):  # the predictions/history tables
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fh, data)

    monkeypatch.setattr(atomic, "_write", full)
    with pytest.raises(AtomicWriteError, match=r"history[.]parquet: No space left on device"):
        train(runs_dir=tmp_path, progress=False, resume=False, **kw)
    assert {p.name: p.read_bytes() for p in old.path.iterdir() if p.is_file()} == before
    assert _leftovers(tmp_path) == []


def test_read_only_runs_folder_is_refused_before_training(tmp_path, monkeypatch):
    from workbench.training.trainer import Trainer

    def never(*a, **k):
        raise AssertionError("training started")

    monkeypatch.setattr(Trainer, "fit", never)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **k: False if "runs" in str(p) else real_access(p, mode))
    with pytest.raises(RunError, match=rf"runs folder {tmp_path / 'runs'} is not writable .*Permission denied"):
        train("synthetic-xor", dataset_params={"n": 120}, epochs=1, runs_dir=tmp_path / "runs", progress=False)


def test_runs_folder_under_a_file_is_one_line_in_the_cli(tmp_path):
    (tmp_path / "afile").write_text("x")
    runs = tmp_path / "afile" / "runs"
    out = subprocess.run([sys.executable, "-m", "workbench.cli", "--runs-dir", str(runs), "train",
                          "--dataset", "synthetic-xor", "--epochs", "1"], env=_env(), capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and f"runs folder {runs} is not writable" in out.stderr
    assert "is not a folder" in out.stderr
    assert (tmp_path / "afile").read_text() == "x"
