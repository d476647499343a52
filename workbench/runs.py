"""The run store: one folder per run, written atomically, and the :func:`train` entry point.

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
derived from the dataset and the config hash, so the same config lands in the same place.

Example
-------
>>> import tempfile
>>> from workbench import train, RunStore
>>> run = train("synthetic-imbalance", epochs=2, runs_dir=tempfile.mkdtemp(),
...             dataset_params={"n": 300}, progress=False)
>>> run.metrics["test"]["fused"] > 0.5
True
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from workbench.data import MultimodalDataset, Splits
from workbench.models import MultimodalModel, build_model
from workbench.results import atomic_write_frame, atomic_write_json
from workbench.trainer import TrainConfig, Trainer, accuracy_table, describe_strategy, predict_frame

RUN_FORMAT_VERSION = 1
STATUS_COMPLETE = "complete"
STATUS_FAILED = "failed"


class RunError(RuntimeError):
    """A run folder is missing, incomplete, failed or of an unknown format version."""


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
    model: MultimodalModel | None = None
    dataset: MultimodalDataset | None = None
    splits: Splits | None = None
    extras: dict = field(default_factory=dict)

    @property
    def modalities(self) -> list[str]:
        return list(self.config["modalities"])

    def accuracy(self) -> pd.DataFrame:
        """Accuracy per split of the fused model and each unimodal head."""
        return accuracy_table(self.predictions, self.modalities)

    def load_model(self) -> MultimodalModel:
        """Rebuild the model from the config and load its weights (``weights_only=True``)."""
        if self.model is None:
            if self.path is None:
                raise RunError(f"run {self.run_id} has no folder to load weights from")
            cfg = self.config
            model = build_model({m: tuple(s) for m, s in cfg["shapes"].items()}, cfg["kinds"],
                                len(cfg["classes"]), fusion=cfg["train"]["fusion"], hidden=cfg["train"]["hidden"],
                                embed=cfg["train"]["embed"], dropout=cfg["train"]["dropout"])
            state = torch.load(self.path / "model.pt", map_location="cpu", weights_only=True)
            model.load_state_dict(state)
            model.eval()
            self.model = model
        return self.model

    def save_result(self, name: str, result) -> Path:
        """Save an analysis result into ``results/NAME`` of this run."""
        if self.path is None:
            raise RunError(f"run {self.run_id} is not saved; save it first")
        return result.save(self.path / "results" / name)

    def result_names(self) -> list[str]:
        folder = (self.path or Path("/nonexistent")) / "results"
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []

    def _ipython_display_(self) -> None:
        """Show the run as an interactive panel when it is the last expression of a notebook cell."""
        from IPython.display import display

        from widgets.panels.base import RunPanel  # the core never imports UI code at module level

        display(RunPanel(self))

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
        return self.root / ".incomplete" / run_id

    def status(self, run_id: str) -> str | None:
        status_file = self.path(run_id) / "status.json"
        if not status_file.exists():
            return None
        try:
            return json.loads(status_file.read_text()).get("status")
        except (OSError, json.JSONDecodeError):
            return None

    def is_complete(self, run_id: str) -> bool:
        return self.status(run_id) == STATUS_COMPLETE

    def write(self, run: Run) -> Path:
        """Write every file of ``run`` into a temp folder, then rename it into place."""
        tmp = self.incomplete_path(run.run_id)
        tmp.mkdir(parents=True, exist_ok=True)
        atomic_write_json(tmp / "config.json", run.config)
        atomic_write_frame(tmp / "history.parquet", run.history)
        atomic_write_frame(tmp / "predictions.parquet", run.predictions)
        atomic_write_json(tmp / "metrics.json", run.metrics)
        if run.model is not None:
            torch.save(run.model.state_dict(), tmp / "model.pt")
        (tmp / "checkpoint.pt").unlink(missing_ok=True)
        atomic_write_json(tmp / "status.json", {"status": STATUS_COMPLETE, "version": RUN_FORMAT_VERSION})
        self._swap_into_place(tmp, self.path(run.run_id))
        run.path = self.path(run.run_id)
        return run.path

    def mark_failed(self, run_id: str, config: dict, error: str) -> Path:
        """Record a failed run (config + error); it never counts as complete."""
        tmp = self.incomplete_path(run_id)
        tmp.mkdir(parents=True, exist_ok=True)
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

    def run_ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def load(self, run_id: str) -> Run:
        """Load a complete run; a missing, failed or unknown-version folder raises :class:`RunError`."""
        folder = self.path(run_id)
        if not folder.is_dir():
            raise RunError(f"no run {run_id!r} in {self.root}")
        status_file = folder / "status.json"
        if not status_file.exists():
            raise RunError(f"run {run_id!r}: status.json missing; the run is incomplete")
        status = json.loads(status_file.read_text())
        if status.get("status") != STATUS_COMPLETE:
            raise RunError(f"run {run_id!r} is {status.get('status')}: {status.get('error', '')}")
        if status.get("version") != RUN_FORMAT_VERSION:
            raise RunError(f"run {run_id!r}: format version {status.get('version')}, this workbench reads {RUN_FORMAT_VERSION}")
        try:
            return Run(
                run_id=run_id,
                config=json.loads((folder / "config.json").read_text()),
                history=pd.read_parquet(folder / "history.parquet"),
                predictions=pd.read_parquet(folder / "predictions.parquet"),
                metrics=json.loads((folder / "metrics.json").read_text()),
                path=folder,
            )
        except (OSError, ValueError) as exc:
            raise RunError(f"run {run_id!r}: cannot read {exc}") from None

    def table(self) -> pd.DataFrame:
        """One row per run folder: id, status, dataset, fusion, strategy, seed, epochs, test accuracy."""
        rows = []
        for run_id in self.run_ids():
            row: dict[str, Any] = {"run_id": run_id, "status": self.status(run_id) or "incomplete"}
            try:
                cfg = json.loads((self.path(run_id) / "config.json").read_text())
                row.update(dataset=cfg.get("dataset"), fusion=cfg["train"]["fusion"], strategy=cfg["train"]["strategy"],
                           seed=cfg["train"]["seed"], epochs=cfg["train"]["epochs"], created=cfg.get("created"))
                metrics = json.loads((self.path(run_id) / "metrics.json").read_text())
                row["test_acc"] = metrics.get("test", {}).get("fused")
            except (OSError, KeyError, ValueError):
                pass
            rows.append(row)
        return pd.DataFrame(rows, columns=["run_id", "status", "dataset", "fusion", "strategy", "seed", "epochs",
                                           "test_acc", "created"])


def metrics_from_predictions(predictions: pd.DataFrame, modalities: list[str]) -> dict:
    """``{split: {"fused": acc, modality: acc, "n": count}}``."""
    table = accuracy_table(predictions, modalities)
    out: dict[str, dict] = {}
    for split, part in table.groupby("split"):
        out[str(split)] = {str(r.model): float(r.accuracy) for r in part.itertuples()}
        out[str(split)]["n"] = int(part["n"].iloc[0])
    return out


def run_id_for(dataset_name: str, config: TrainConfig, dataset_params: dict | None = None) -> str:
    h = config.hash({"dataset": dataset_name, "dataset_params": dataset_params or {}})
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in dataset_name)
    return f"{safe}-{config.fusion}-{config.strategy}-s{config.seed}-{h}"


def train(
    dataset: str | MultimodalDataset = "mfeat",
    *,
    fusion: str = "concat",
    epochs: int = 30,
    seed: int = 0,
    strategy: str = "naive",
    strategy_params: dict | None = None,
    dataset_params: dict | None = None,
    split: dict | None = None,
    runs_dir: str | Path | None = None,
    save: bool = True,
    resume: bool = True,
    progress: bool = True,
    callbacks: list | None = None,
    **config: Any,
) -> Run:
    """Train a multimodal classifier and (by default) record it in the run store.

    Parameters
    ----------
    dataset : str or MultimodalDataset
        A catalog name (see ``workbench datasets``), a data folder path, or a dataset.
    fusion : {"late", "concat", "sum", "gated", "mlp"}
    epochs, seed : int
    strategy : str
        A registered training strategy (``naive`` by default).
    strategy_params, dataset_params : dict, optional
        Keyword parameters of the strategy and of a synthetic dataset's generator.
    split : dict, optional
        ``train``/``calib``/``test`` fractions (default 0.6/0.2/0.2), seeded by ``seed``.
    runs_dir : path, optional
        Run store root (default ``./runs`` or ``$WORKBENCH_RUNS``).
    save : bool
        Write the run folder (atomically).
    resume : bool
        Continue from the checkpoint of an interrupted run with the same config.
    callbacks : list, optional
        Epoch-end callbacks passed to the :class:`Trainer` (e.g. a ``GapTracker``).
    **config
        Other :class:`TrainConfig` fields (``batch_size``, ``lr``, ``patience``, ...).

    Returns
    -------
    Run

    Examples
    --------
    >>> import tempfile
    >>> run = train("synthetic-xor", fusion="concat", epochs=3, dataset_params={"n": 400},
    ...             runs_dir=tempfile.mkdtemp(), progress=False)
    >>> sorted(run.metrics)
    ['calib', 'test', 'train']
    """
    from workbench import load_dataset

    ds = dataset if isinstance(dataset, MultimodalDataset) else load_dataset(dataset, **(dataset_params or {}))
    cfg = TrainConfig(fusion=fusion, epochs=epochs, seed=seed, strategy=strategy,
                      strategy_params=dict(strategy_params or {}), progress=progress, **config)
    splits = ds.split(seed=seed, **(split or {}))
    store = RunStore(runs_dir)
    run_id = run_id_for(ds.name, cfg, dataset_params)
    checkpoint = store.incomplete_path(run_id) / "checkpoint.pt" if save else None
    trainer = Trainer(cfg, callbacks=callbacks).fit(ds, splits, checkpoint_path=checkpoint, resume=resume and save)
    model = trainer.model_
    predictions = predict_frame(model, ds, split_labels=splits.labels(ds.n_samples))
    predictions = predictions[predictions["split"] != ""].reset_index(drop=True)
    run = Run(
        run_id=run_id,
        config={
            "dataset": ds.name, "dataset_params": dataset_params or {}, "train": cfg.to_dict(),
            "strategy": describe_strategy(trainer),
            "modalities": ds.modality_names, "shapes": {m: list(s) for m, s in ds.shapes.items()},
            "kinds": ds.kinds, "classes": ds.classes,
            "groups": [] if ds.groups is None else list(ds.groups.columns),
            "split": {k: int(len(v)) for k, v in splits.as_dict().items()},
            "epochs_run": trainer.stopped_epoch_, "version": RUN_FORMAT_VERSION,
            "created": _dt.datetime.now().isoformat(timespec="seconds"),
            "torch": torch.__version__,
        },
        history=trainer.history,
        predictions=predictions,
        metrics=metrics_from_predictions(predictions, ds.modality_names),
        model=model.cpu(),
        dataset=ds,
        splits=splits,
        extras={"trainer": trainer},
    )
    if save:
        store.write(run)
    return run


def load_run(run: str | Path, runs_dir: str | Path | None = None) -> Run:
    """Load a saved run by id (in ``runs_dir``) or by folder path."""
    path = Path(run)
    if path.is_dir() and (path / "config.json").exists():
        return RunStore(path.parent).load(path.name)
    return RunStore(runs_dir).load(str(run))


def split_indices(run: Run) -> dict[str, np.ndarray]:
    """Sample indices of each split recorded in a run's predictions."""
    return {s: run.predictions.loc[run.predictions["split"] == s, "sample"].to_numpy() for s in ("train", "calib", "test")}
