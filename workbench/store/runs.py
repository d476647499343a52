"""The run store: one folder per run, written atomically (:func:`workbench.training.train.train` writes them).

A run folder holds::

    config.json       dataset, TrainConfig, strategy description, format version, times
    history.parquet   one row per epoch
    predictions.parquet  per-sample fused and unimodal predictions, with the split of each sample
    metrics.json      accuracy per split of the fused model and every unimodal head
    model.pt          state_dict (load with torch.load(..., weights_only=True))
    results/NAME/     analysis results saved later (gap, Shapley, fairness, ...)
    status.json       {"status": "complete"} -- written last

The run is assembled in ``ROOT/.incomplete/RUN_ID`` and renamed into place only when every
file is written, so a crash never leaves a folder that looks complete. The run id is
derived from the dataset's name, a fingerprint of its contents (:func:`dataset_fingerprint`)
and the config hash, so the same config on the same data lands in the same place and two
folders that merely share a name never do.

Faults the store survives:

- **Two processes, one run.** Training holds an exclusive lock ``.incomplete/RUN_ID.lock``
  (``fcntl.flock``, released by the kernel when the holder dies, so a kill -9 leaves no
  stale lock); the second process fails at once with "another process is training run ...".
  Every temp file has a unique name (:mod:`workbench.store.atomic`).
- **Malformed folders.** Every file is validated on reading (a pydantic schema per JSON file,
  required columns per Parquet file): :meth:`RunStore.load` raises :class:`RunError` naming
  the file; listings (:meth:`RunStore.table`, sweeps) skip such a folder with a warning.
- **Bad checkpoints** are moved aside by the trainer (``checkpoint.bad-N``) and training
  restarts (see :mod:`workbench.training.trainer`).
- **Unwritable folders and full disks.** The runs folder is checked for writability before
  training starts; a failed write removes its temp file and names the path and the reason.

Example
-------
>>> import tempfile
>>> from workbench import train
>>> run = train("synthetic-imbalance", epochs=2, runs_dir=tempfile.mkdtemp(),
...             dataset_params={"n": 300}, progress=False)
>>> run.metrics["test"]["fused"] > 0.5
True
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, RootModel, ValidationError

from workbench.data import MultimodalDataset, Splits
from workbench.store.atomic import atomic_torch_save, atomic_write_frame, atomic_write_json
from workbench.tasks import make_task
from workbench.tasks.classification import accuracy_table, metrics_from_predictions  # noqa: F401 -- re-exported

try:
    import fcntl
except ImportError:  # pragma: no cover -- Windows: no advisory locks, see RunStore.lock
    fcntl = None  # type: ignore[assignment]

RUN_FORMAT_VERSION = 1
STATUS_COMPLETE = "complete"
STATUS_FAILED = "failed"


class RunError(RuntimeError):
    """A run folder is missing, incomplete, failed, malformed or of an unknown format version."""


class RunLockedError(RunError):
    """Another process holds the lock of this run (it is training it now)."""


class RunWarning(UserWarning):
    """A listing skipped a malformed run folder."""


# -- schemas of the files of a run folder ------------------------------------------------------------
class _Schema(BaseModel):
    model_config = ConfigDict(extra="allow")


class StatusFile(_Schema):
    """``status.json``."""

    status: Literal["complete", "failed"]
    version: int
    error: str | None = None


class TrainSection(_Schema):
    """The ``train`` section of ``config.json`` (a :class:`TrainConfig` as a dict)."""

    fusion: str
    strategy: str
    seed: int
    epochs: int
    hidden: int | None = None  # a ranking run has no encoders
    embed: int | None = None
    dropout: float
    task: str = "classification"
    task_params: dict = {}


class ConfigFile(_Schema):
    """``config.json`` of a complete run."""

    dataset: str
    train: TrainSection
    modalities: list[str]
    shapes: dict[str, list[int]]
    kinds: dict[str, str]
    classes: list[str | int]
    created: str | None = None


class MetricsFile(RootModel[dict[str, dict[str, int | float]]]):
    """``metrics.json``: ``{split: {"fused" | modality | "n": number}}``."""


HISTORY_COLUMNS = ("epoch",)
PREDICTION_COLUMNS = ("sample", "split")  # every task's; the task adds its own (Task.prediction_columns)


def _read_json(path: Path, schema: type[BaseModel], run_id: str) -> Any:
    """Read and validate one JSON file; every problem is a :class:`RunError` naming the file."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise RunError(f"run {run_id!r}: cannot read {path}: the file is missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunError(f"run {run_id!r}: cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunError(f"run {run_id!r}: cannot read {path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "top level"
        raise RunError(f"run {run_id!r}: cannot read {path}: wrong shape ({where}: {first['msg']})") from None


def _read_frame(path: Path, columns: tuple[str, ...] | list[str], run_id: str) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path)
    except FileNotFoundError:
        raise RunError(f"run {run_id!r}: cannot read {path}: the file is missing") from None
    except Exception as exc:  # noqa: BLE001 -- pyarrow raises many types for a corrupt file
        raise RunError(f"run {run_id!r}: cannot read {path}: not a readable Parquet file ({type(exc).__name__})") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise RunError(f"run {run_id!r}: cannot read {path}: it lacks the column(s) {missing}")
    return frame


def dataset_fingerprint(ds: MultimodalDataset) -> str:
    """A hash of a dataset's contents: every modality tensor (name, dtype, shape, bytes), the
    labels, the presence mask, the group table and the class names.

    Part of the run id, so two data folders with the same name never share a run (or resume
    each other's checkpoints). BLAKE2b reads at about 1 GB/s, far below a training run's cost.
    """
    h = hashlib.blake2b(digest_size=8)

    def add(name: str, t: torch.Tensor) -> None:
        hash_array(h, name, t.detach().cpu().numpy())

    for m in sorted(ds.modalities):
        add(f"x:{m}", ds.modalities[m])
    add("y", ds.y)
    for m in sorted(ds.mask or {}):
        add(f"mask:{m}", ds.mask[m])
    if ds.groups is not None:
        hash_frame(h, ds.groups)
    h.update(json.dumps([str(c) for c in (ds.classes or [])]).encode())
    return h.hexdigest()


def hash_array(h: Any, name: str, a: np.ndarray) -> None:
    """Feed ``name``, the dtype, the shape and the bytes of ``a`` to the hash ``h`` (a fingerprint's step)."""
    a = np.ascontiguousarray(a)
    h.update(f"{name}|{a.dtype}|{a.shape}|".encode())
    h.update(a.tobytes())


def hash_frame(h: Any, frame: pd.DataFrame) -> None:
    """Feed a table's column names and its values as text to the hash ``h``."""
    h.update(json.dumps([str(c) for c in frame.columns]).encode())
    h.update(pd.util.hash_pandas_object(frame.astype(str), index=False).to_numpy().tobytes())


def default_runs_dir() -> Path:
    return Path(os.environ.get("WORKBENCH_RUNS", "runs"))


@dataclass
class Run:
    """A trained (or loaded) run: config, history, predictions, metrics and the model."""

    run_id: str
    config: dict
    history: pd.DataFrame
    predictions: pd.DataFrame
    metrics: dict
    path: Path | None = None
    model: torch.nn.Module | None = None
    dataset: MultimodalDataset | None = None
    splits: Splits | None = None
    extras: dict = field(default_factory=dict)

    @property
    def modalities(self) -> list[str]:
        return list(self.config["modalities"])

    def accuracy(self) -> pd.DataFrame:
        """The task's headline score per split and model (:meth:`workbench.tasks.base.Task.score_table`):
        for classification the accuracy of the fused model and each unimodal head, for alignment
        the top-1 retrieval accuracy of every direction."""
        train_cfg = self.config.get("train", {})
        task = make_task(train_cfg.get("task", "classification"), **train_cfg.get("task_params", {}))
        return task.score_table(self.predictions, self.modalities)

    def load_model(self, *, encoders: dict | None = None) -> torch.nn.Module:
        """Rebuild the model from the config and load its weights (``weights_only=True``).

        A run trained with encoders of your own (``train(..., encoders=...)``, recorded in
        ``config.json``) needs the same modules again: ``encoders={modality: module}``.
        """
        if self.model is None:
            if self.path is None:
                raise RunError(f"run {self.run_id} has no folder to load weights from")
            cfg = self.config
            missing = sorted(set(cfg.get("encoders") or {}) - set(encoders or {}))
            if missing:
                raise RunError(f"run {self.run_id!r} was trained with encoders of your own for {missing} "
                               f"({', '.join(cfg['encoders'][m] for m in missing)}): pass them as "
                               "load_model(encoders={modality: module})")
            train_cfg = cfg["train"]
            task = make_task(train_cfg.get("task", "classification"), **train_cfg.get("task_params", {}))
            model = task.build_model(shapes={m: tuple(s) for m, s in cfg["shapes"].items()}, kinds=cfg["kinds"],
                                     n_classes=len(cfg["classes"]), config=train_cfg, encoders=encoders)
            self.load_weights(model)
            model.eval()
            self.model = model
        return self.model

    def load_weights(self, module: torch.nn.Module) -> None:
        """Load the run folder's ``model.pt`` into ``module`` (``weights_only=True``); a missing or
        unusable file is a :class:`RunError` naming it."""
        if self.path is None:
            raise RunError(f"run {self.run_id!r} has no folder to load weights from")
        weights = self.path / "model.pt"
        try:
            module.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        except FileNotFoundError:
            raise RunError(f"run {self.run_id!r}: {weights} is missing") from None
        except Exception as exc:  # noqa: BLE001 -- unpickling, zip and shape errors all mean "bad file"
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise RunError(f"run {self.run_id!r}: {weights} is not this run's weights ({first})") from None

    def save_result(self, name: str, result) -> Path:
        """Save an analysis result into ``results/NAME`` of this run."""
        if self.path is None:
            raise RunError(f"run {self.run_id} is not saved; save it first")
        return result.save(self.path / "results" / name)

    def result_names(self) -> list[str]:
        folder = (self.path or Path("/nonexistent")) / "results"
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []

    def _ipython_display_(self) -> None:
        """Show the run (its panel, or its tables without the UI) as the last expression of a notebook cell."""
        from workbench.display import show

        show(self)

    def __repr__(self) -> str:
        acc = self.metrics.get("test", {}).get("fused")
        return f"Run({self.run_id!r}, test_acc={acc}, path={str(self.path) if self.path else None!r})"


class RunStore:
    """Run folders under one root (default ``./runs`` or ``$WORKBENCH_RUNS``)."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_runs_dir()

    def path(self, run_id: str) -> Path:
        if "/" in run_id or run_id.startswith("."):
            raise RunError(f"invalid run id {run_id!r}")
        return self.root / run_id

    def incomplete_path(self, run_id: str) -> Path:
        return self.root / ".incomplete" / self.path(run_id).name  # the same run-id check as path()

    def read_status(self, run_id: str) -> StatusFile:
        """The validated ``status.json`` (:class:`RunError` naming the file when absent or malformed)."""
        return _read_json(self.path(run_id) / "status.json", StatusFile, run_id)

    def status(self, run_id: str) -> str | None:
        """``complete``, ``failed``, or None when ``status.json`` is missing or malformed."""
        try:
            return self.read_status(run_id).status
        except RunError:
            return None

    def validate(self, run_id: str) -> tuple[StatusFile, ConfigFile, dict]:
        """Check a complete run's JSON files (status, config, metrics) without loading its tables.

        Returns the status, config and metrics; raises :class:`RunError` naming the bad file.
        """
        status = self.read_status(run_id)
        if status.status != STATUS_COMPLETE:
            raise RunError(f"run {run_id!r} is {status.status}: {status.error or ''}")
        if status.version != RUN_FORMAT_VERSION:
            raise RunError(f"run {run_id!r}: format version {status.version}, this workbench reads {RUN_FORMAT_VERSION}")
        folder = self.path(run_id)
        config = _read_json(folder / "config.json", ConfigFile, run_id)
        metrics = _read_json(folder / "metrics.json", MetricsFile, run_id).root
        return status, config, metrics

    def is_complete(self, run_id: str) -> bool:
        return self.status(run_id) == STATUS_COMPLETE

    def check_writable(self) -> None:
        """Raise :class:`RunError` naming the folder unless runs can be written under the root.

        Run before training, so a read-only or full runs folder is reported in one line instead of
        after the first epoch. The check creates nothing: it probes the runs folder, or the nearest
        ancestor that exists when it does not exist yet, with a real temp file that it removes
        (``os.access`` alone says yes to root on a read-only mount).
        """
        probe_dir = self.root.absolute()
        while not probe_dir.exists() and probe_dir != probe_dir.parent:
            probe_dir = probe_dir.parent
        try:
            if not probe_dir.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, "is not a folder", str(probe_dir))
            if not os.access(probe_dir, os.W_OK | os.X_OK):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(probe_dir))
            fd, probe = tempfile.mkstemp(dir=probe_dir, prefix=".workbench-probe-")
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            where = exc.filename or probe_dir
            raise RunError(f"runs folder {self.root} is not writable ({where}: {exc.strerror or exc})") from None

    @contextlib.contextmanager
    def lock(self, run_id: str) -> Iterator[Path]:
        """Hold the exclusive lock of ``run_id`` (``.incomplete/RUN_ID.lock``) or raise
        :class:`RunLockedError` at once.

        ``flock`` locks die with their process, so a crashed trainer never blocks its run. The
        lock file itself is left in place: deleting it would let a third process lock a fresh
        file while the second still holds the old one. On a network filesystem without
        ``flock`` support (some NFS setups) the lock is advisory only.
        """
        path = self.root / ".incomplete" / f"{self.path(run_id).name}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                    raise RunLockedError(f"another process (pid {holder}) is training run {run_id}; "
                                         f"wait for it to finish (lock {path})") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            yield path
        finally:
            os.close(fd)  # releases the lock

    def write(self, run: Run) -> Path:
        """Write every file of ``run`` into a temp folder, then rename it into place."""
        tmp = self.incomplete_path(run.run_id)
        tmp.mkdir(parents=True, exist_ok=True)
        atomic_write_json(tmp / "config.json", run.config)
        atomic_write_frame(tmp / "history.parquet", run.history)
        atomic_write_frame(tmp / "predictions.parquet", run.predictions)
        atomic_write_json(tmp / "metrics.json", run.metrics)
        if run.model is not None:
            atomic_torch_save(tmp / "model.pt", run.model.state_dict())
        (tmp / "checkpoint.pt").unlink(missing_ok=True)
        atomic_write_json(tmp / "status.json", {"status": STATUS_COMPLETE, "version": RUN_FORMAT_VERSION})
        self._swap_into_place(tmp, self.path(run.run_id))
        run.path = self.path(run.run_id)
        return run.path

    def mark_failed(self, run_id: str, config: dict, error: str) -> Path:
        """Record a failed run (config + error); it never counts as complete.

        Assembled in a fresh temp folder, never in ``.incomplete/RUN_ID``, which may hold the
        checkpoint of a process that is training this run right now.
        """
        (self.root / ".incomplete").mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=self.root / ".incomplete", prefix=f"{self.path(run_id).name}.failed-"))
        atomic_write_json(tmp / "config.json", config)
        atomic_write_json(tmp / "status.json", {"status": STATUS_FAILED, "error": error, "version": RUN_FORMAT_VERSION})
        self._swap_into_place(tmp, self.path(run_id))
        return self.path(run_id)

    def _swap_into_place(self, tmp: Path, final: Path) -> None:
        if final.exists():
            trash = self.root / ".incomplete" / f"{final.name}.old-{os.getpid()}"
            os.replace(final, trash)
            os.replace(tmp, final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, final)

    def quarantine(self, run_id: str) -> Path:
        """Move a malformed run folder to ``ROOT/.invalid/RUN_ID.bad-N`` (kept, not deleted)."""
        folder = self.path(run_id)
        target_dir = self.root / ".invalid"
        target_dir.mkdir(parents=True, exist_ok=True)
        n = 1
        while (target := target_dir / f"{folder.name}.bad-{n}").exists():
            n += 1
        os.replace(folder, target)
        return target

    def run_ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def load(self, run_id: str) -> Run:
        """Load a complete run; a missing, failed, malformed or unknown-version folder raises
        :class:`RunError` naming the folder and the file."""
        folder = self.path(run_id)
        if not folder.is_dir():
            raise RunError(f"no run {run_id!r} in {self.root}")
        if not (folder / "status.json").exists():
            raise RunError(f"run {run_id!r}: {folder / 'status.json'} missing; the run is incomplete")
        _, config, metrics = self.validate(run_id)
        history = _read_frame(folder / "history.parquet", HISTORY_COLUMNS, run_id)
        try:
            task = make_task(config.train.task, **config.train.task_params)
        except ValueError as exc:
            raise RunError(f"run {run_id!r}: {folder / 'config.json'}: {exc} (import the module that registers "
                           "it first)") from None
        pred_columns = list(dict.fromkeys([*PREDICTION_COLUMNS, *task.prediction_columns(config.modalities)]))
        predictions = _read_frame(folder / "predictions.parquet", pred_columns, run_id)
        return Run(run_id=run_id, config=config.model_dump(), history=history, predictions=predictions,
                   metrics=metrics, path=folder)

    def table(self) -> pd.DataFrame:
        """One row per run folder: id, status, dataset, fusion, strategy, seed, epochs, test accuracy.

        Incomplete and failed runs are listed by status; a complete run whose files are malformed
        is left out with a :class:`RunWarning` naming the file.
        """
        rows = []
        for run_id in self.run_ids():
            try:
                status = self.read_status(run_id)
            except RunError as exc:
                if (self.path(run_id) / "status.json").exists():
                    warnings.warn(f"skipping {exc}", RunWarning, stacklevel=2)
                    continue
                rows.append({"run_id": run_id, "status": "incomplete"})
                continue
            row: dict[str, Any] = {"run_id": run_id, "status": status.status}
            if status.status == STATUS_COMPLETE:
                try:
                    _, cfg, metrics = self.validate(run_id)
                except RunError as exc:
                    warnings.warn(f"skipping {exc}", RunWarning, stacklevel=2)
                    continue
                row.update(dataset=cfg.dataset, task=cfg.train.task, fusion=cfg.train.fusion, strategy=cfg.train.strategy,
                           seed=cfg.train.seed, epochs=cfg.train.epochs, created=cfg.created,
                           test_acc=metrics.get("test", {}).get("fused"))
            rows.append(row)
        return pd.DataFrame(rows, columns=["run_id", "status", "dataset", "task", "fusion", "strategy", "seed",
                                           "epochs", "test_acc", "created"])


def load_run(run: str | Path, runs_dir: str | Path | None = None) -> Run:
    """Load a saved run by id (in ``runs_dir``) or by folder path."""
    path = Path(run)
    if path.is_dir() and (path / "config.json").exists():
        return RunStore(path.parent).load(path.name)
    return RunStore(runs_dir).load(str(run))


def split_indices(run: Run) -> dict[str, np.ndarray]:
    """Sample indices of each split recorded in a run's predictions."""
    return {s: run.predictions.loc[run.predictions["split"] == s, "sample"].to_numpy() for s in ("train", "calib", "test")}
