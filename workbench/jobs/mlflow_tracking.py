"""Runs and sweeps in MLflow: a trainer callback, and an export of recorded runs.

Researchers' teams often already run an MLflow tracking server; this puts the workbench's runs
there without changing how they are trained or stored (the run store stays the source of truth).

- :class:`MLflowCallback`: a trainer callback (``on_epoch_end(ctx, epoch, row)``, see
  :class:`workbench.training.trainer.Trainer`) that opens an MLflow run at the first epoch,
  logs the training configuration as parameters and every numeric history column per epoch
  (``train_loss``, ``heldout_acc``, the per-modality ``heldout_acc_<m>``, ...) at step = epoch;
  :meth:`MLflowCallback.log_run` then adds the final metrics, tags and artifacts of the
  :class:`~workbench.store.runs.Run` that ``train`` returned, and ends the MLflow run.
- :func:`export_runs` / :func:`export`: recorded runs (ids, folders, ``sweep-...`` ids or ``all``)
  written as MLflow runs: parameters (the run's training config, flattened), per-epoch metrics
  (its history), final metrics (``<split>_acc_<model>`` from ``metrics.json``, e.g.
  ``test_acc_fused``, ``test_acc_audio``), and as artifacts ``config.json``, ``metrics.json``,
  ``history.csv`` and every analysis result's tables (``results/NAME/TABLE.csv`` and ``result.json``).

Runs are grouped by configuration through tags (:func:`run_tags`): ``workbench.config`` (the
readable label of :mod:`workbench.analyses.compare`, e.g. ``mfeat | naive | concat | 30 ep``) and
``workbench.config_key`` (its hash: every setting but the seed) are equal for the seeds of one
configuration, so MLflow's own UI groups them ("Group by" the tag) and aggregates over seeds;
``workbench.seed``, ``workbench.run_id`` and, for a sweep, ``workbench.sweep`` are tags too.
Export is idempotent by run id: a run already in the experiment (tag ``workbench.run_id``) is
skipped, or replaced with ``force=True``.

Tracking store: ``tracking_uri=None`` uses ``$MLFLOW_TRACKING_URI`` when set, else the local
file store ``./mlruns`` (no server needed); any tracking server by its URI
(``http://host:5000``). MLflow 3 keeps the file store in maintenance mode behind
``MLFLOW_ALLOW_FILE_STORE``; we set that variable (unless the user set it) for file URIs only.
MLflow is optional: ``pip install mlflow-skinny`` (client and file store) or ``mlflow`` (with the
server and UI); without it these functions raise an ``ImportError`` saying so.

Example
-------
>>> from workbench import load_dataset, train
>>> from workbench.jobs.mlflow_tracking import MLflowCallback, export
>>> with MLflowCallback(tracking_uri="file:/tmp/mlruns") as cb:         # doctest: +SKIP
...     run = train(load_dataset("mfeat"), epochs=5, callbacks=[cb])
...     cb.log_run(run)
>>> export("sweep-5bb864c8a5", tracking_uri="http://127.0.0.1:5000")   # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pandas as pd

from workbench.store.runs import Run

EXPERIMENT = "workbench"
DEFAULT_STORE = "mlruns"
TAG_PREFIX = "workbench."
# MLflow's limits (mlflow.utils.validation): names, parameter values, entries per log_batch call
_MAX_KEY, _MAX_PARAM_VALUE, _MAX_PARAMS_PER_BATCH, _MAX_METRICS_PER_BATCH = 250, 6000, 100, 1000
_BAD_NAME = re.compile(r"[^A-Za-z0-9_\-. /:]")
_INSTALL = "pip install mlflow-skinny (client and file store) or mlflow (with the tracking server)"


def _mlflow():
    try:
        import mlflow
    except ImportError as exc:
        raise ImportError(f"MLflow is not installed ({exc}): {_INSTALL}") from exc
    return mlflow


def resolve_tracking_uri(uri: str | os.PathLike | None = None) -> str:
    """The tracking URI to use: ``uri`` (a path becomes a ``file:`` URI), else
    ``$MLFLOW_TRACKING_URI``, else the file store ``./mlruns``.

    Examples
    --------
    >>> resolve_tracking_uri("/tmp/mlruns")
    'file:///tmp/mlruns'
    >>> resolve_tracking_uri("http://127.0.0.1:5000")
    'http://127.0.0.1:5000'
    """
    if uri is None:
        uri = os.environ.get("MLFLOW_TRACKING_URI") or Path(DEFAULT_STORE).resolve().as_uri()
    uri = str(uri)
    if not uri.strip():
        raise ValueError("tracking_uri: empty")
    scheme = urlparse(uri).scheme
    if scheme == "" or (len(scheme) == 1 and os.name == "nt"):  # a plain path
        uri = Path(uri).resolve().as_uri()
        scheme = "file"
    if scheme == "file":
        # MLflow 3 refuses the file store unless this is set; it is our documented default
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return uri


def metric_name(name: str) -> str:
    """``name`` with the characters MLflow rejects in metric/param names replaced by ``_``.

    Examples
    --------
    >>> metric_name("heldout_acc_audio (left)")
    'heldout_acc_audio _left_'
    """
    return _BAD_NAME.sub("_", str(name))[:_MAX_KEY]


def _flatten(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
        if not value and prefix:
            out[metric_name(prefix)] = "{}"
        return
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    out[metric_name(prefix)] = text[:_MAX_PARAM_VALUE]


def run_params(config: Mapping[str, Any]) -> dict[str, str]:
    """MLflow parameters of a run: its ``train`` settings flattened (``lr``, ``strategy_params.alpha``),
    plus ``dataset`` and ``dataset_params.*``; values as MLflow stores them (strings).

    Examples
    --------
    >>> run_params({"dataset": "mfeat", "dataset_params": {"n": 300},
    ...             "train": {"lr": 0.01, "strategy_params": {"alpha": 0.5}, "patience": None}})
    {'lr': '0.01', 'strategy_params.alpha': '0.5', 'patience': 'null', 'dataset': 'mfeat', 'dataset_params.n': '300'}
    """
    out: dict[str, str] = {}
    _flatten("", dict(config.get("train", {})), out)
    if "dataset" in config:
        out["dataset"] = str(config["dataset"])
    _flatten("dataset_params", dict(config.get("dataset_params") or {}), out)
    out.pop("dataset_params", None)  # an empty mapping: no parameter
    return out


def config_label(config: Mapping[str, Any]) -> str:
    """The configuration's readable label, as :mod:`workbench.analyses.compare` names it (without the
    hash compare appends where two configurations of different settings would share a label).

    Examples
    --------
    >>> config_label({"dataset": "mfeat", "train": {"strategy": "naive", "fusion": "concat", "epochs": 30}})
    'mfeat | naive | concat | 30 ep'
    """
    train = config.get("train", {})
    return f"{config.get('dataset')} | {train.get('strategy')} | {train.get('fusion')} | {train.get('epochs')} ep"


def run_tags(config: Mapping[str, Any], run_id: str, *, sweep_id: str | None = None) -> dict[str, str]:
    """Tags that group the seeds of one configuration (``workbench.config``, ``workbench.config_key``)
    and identify the run (``workbench.run_id``, ``workbench.seed``, ``workbench.sweep``)."""
    from workbench.jobs.sweep import configuration_key

    train = config.get("train", {})
    tags = {"config": config_label(config), "config_key": configuration_key(config), "run_id": run_id,
            "seed": str(train.get("seed")), "dataset": str(config.get("dataset")),
            "strategy": str(train.get("strategy")), "fusion": str(train.get("fusion")),
            "task": str(train.get("task", "classification"))}
    if sweep_id:
        tags["sweep"] = sweep_id
    return {TAG_PREFIX + k: v for k, v in tags.items()} | {"mlflow.runName": run_id}


def final_metrics(metrics: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """``metrics.json`` as MLflow metrics: ``<split>_acc_<model>`` (e.g. ``test_acc_fused``) and ``<split>_n``.

    Examples
    --------
    >>> final_metrics({"test": {"fused": 0.7, "audio": 0.6, "n": 40}})
    {'test_acc_fused': 0.7, 'test_acc_audio': 0.6, 'test_n': 40.0}
    """
    out = {}
    for split, values in metrics.items():
        for key, value in values.items():
            name = f"{split}_n" if key == "n" else f"{split}_acc_{key}"
            out[metric_name(name)] = float(value)
    return out


def history_metrics(row: Mapping[str, Any]) -> dict[str, float]:
    """The finite numeric entries of a history row (not ``epoch``), named for MLflow."""
    out = {}
    for key, value in row.items():
        if key == "epoch" or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(float(value)):
            out[metric_name(key)] = float(value)
    return out


def _experiment_id(client, name: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            client.restore_experiment(exp.experiment_id)
        return exp.experiment_id
    return client.create_experiment(name)


def _log_params(client, mlflow_run_id: str, params: Mapping[str, str]) -> None:
    from mlflow.entities import Param

    items = [Param(k, v) for k, v in params.items()]
    for i in range(0, len(items), _MAX_PARAMS_PER_BATCH):
        client.log_batch(mlflow_run_id, params=items[i:i + _MAX_PARAMS_PER_BATCH], synchronous=True)


def _log_metrics(client, mlflow_run_id: str, rows: Iterable[tuple[int, Mapping[str, float]]], timestamp: int) -> None:
    from mlflow.entities import Metric

    items = [Metric(k, v, timestamp, step) for step, values in rows for k, v in values.items()]
    for i in range(0, len(items), _MAX_METRICS_PER_BATCH):
        client.log_batch(mlflow_run_id, metrics=items[i:i + _MAX_METRICS_PER_BATCH], synchronous=True)


def _log_artifacts(client, mlflow_run_id: str, run: Run) -> None:
    """config.json, metrics.json, history.csv and every result's tables as CSV (previewed by MLflow's UI)."""
    from workbench.store.results import load_result

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "config.json").write_text(json.dumps(run.config, indent=2, default=str))
        (root / "metrics.json").write_text(json.dumps(run.metrics, indent=2, default=str))
        run.history.to_csv(root / "history.csv", index=False)
        for name in run.result_names():
            folder = run.path / "results" / name
            if not (folder / "result.json").exists():
                continue
            result = load_result(folder)
            out = root / "results" / name
            out.mkdir(parents=True)
            (out / "result.json").write_text((folder / "result.json").read_text())
            for f in dataclasses.fields(result):
                value = getattr(result, f.name)
                if isinstance(value, pd.DataFrame):
                    value.to_csv(out / f"{f.name}.csv", index=False)
        client.log_artifacts(mlflow_run_id, str(root))


def _existing(client, experiment_id: str, run_id: str) -> list[str]:
    found = client.search_runs([experiment_id], filter_string=f"tags.`{TAG_PREFIX}run_id` = '{run_id}'")
    return [r.info.run_id for r in found]


def _timestamp(run: Run) -> int:
    created = run.config.get("created")
    try:
        return int(pd.Timestamp(created).timestamp() * 1000) if created else 0
    except ValueError:
        return 0


def export_runs(runs: Iterable[Run], *, tracking_uri: str | None = None, experiment: str = EXPERIMENT,
                sweep_id: str | None = None, force: bool = False) -> pd.DataFrame:
    """Write recorded runs to MLflow; see the module docstring for what is logged.

    Parameters
    ----------
    runs : iterable of Run
        Loaded runs (:func:`workbench.load_run`), with their folders (for the artifacts).
    tracking_uri : str, optional
        Tracking store (:func:`resolve_tracking_uri`); default ``$MLFLOW_TRACKING_URI`` or ``./mlruns``.
    experiment : str
        MLflow experiment name, created if missing.
    sweep_id : str, optional
        Recorded as tag ``workbench.sweep``.
    force : bool
        Replace runs already exported (matched by tag ``workbench.run_id``) instead of skipping them.

    Returns
    -------
    DataFrame
        One row per run: ``run_id``, ``mlflow_run_id``, ``status`` (``exported`` / ``skipped``).

    Examples
    --------
    >>> export_runs([load_run("runs/<run id>")], tracking_uri="file:/tmp/mlruns")  # doctest: +SKIP
    """
    if not experiment or not str(experiment).strip():
        raise ValueError("experiment: empty name")
    runs = list(runs)
    if not runs:
        raise ValueError("runs: nothing to export")
    uri = resolve_tracking_uri(tracking_uri)
    mlflow = _mlflow()
    client = mlflow.MlflowClient(tracking_uri=uri)
    exp_id = _experiment_id(client, experiment)
    rows = []
    for run in runs:
        if run.path is None:
            raise ValueError(f"runs: run {run.run_id!r} has no folder (export saved runs)")
        existing = _existing(client, exp_id, run.run_id)
        if existing and not force:
            rows.append({"run_id": run.run_id, "mlflow_run_id": existing[0], "status": "skipped"})
            continue
        for old in existing:
            client.delete_run(old)
        ts = _timestamp(run)
        created = client.create_run(exp_id, start_time=ts or None, run_name=run.run_id,
                                    tags=run_tags(run.config, run.run_id, sweep_id=sweep_id))
        mid = created.info.run_id
        try:
            _log_params(client, mid, run_params(run.config))
            history = [(int(r["epoch"]), history_metrics(r)) for r in run.history.to_dict("records")]
            final_step = max((s for s, _ in history), default=0)
            _log_metrics(client, mid, [*history, (final_step, final_metrics(run.metrics))], ts)
            _log_artifacts(client, mid, run)
        except BaseException:
            client.set_terminated(mid, status="FAILED")
            raise
        client.set_terminated(mid, status="FINISHED")
        rows.append({"run_id": run.run_id, "mlflow_run_id": mid, "status": "exported"})
    return pd.DataFrame(rows, columns=["run_id", "mlflow_run_id", "status"])


def export(sources: str | list[str], *, runs_dir: str | Path | None = None, tracking_uri: str | None = None,
           experiment: str = EXPERIMENT, force: bool = False) -> pd.DataFrame:
    """Export the runs that ``sources`` name (run ids, run folders, ``sweep-...`` ids, ``all``) to MLflow.

    Runs of a sweep get the tag ``workbench.sweep``; see :func:`export_runs` for the rest.

    Examples
    --------
    >>> export("sweep-5bb864c8a5", tracking_uri="file:/tmp/mlruns")  # doctest: +SKIP
    """
    from workbench.jobs.sweep import resolve_runs

    sources = [sources] if isinstance(sources, str) else list(sources)
    resolve_tracking_uri(tracking_uri)  # a bad URI fails before any run is read
    frames = []
    for source in sources:
        sweep_id = source if source.startswith("sweep-") and not Path(source).is_dir() else None
        frames.append(export_runs(resolve_runs([source], runs_dir), tracking_uri=tracking_uri,
                                  experiment=experiment, sweep_id=sweep_id, force=force))
    return pd.concat(frames, ignore_index=True)


class MLflowCallback:
    """Trainer callback logging a training run to MLflow as it goes.

    The MLflow run opens at the first ``on_epoch_end`` with the training configuration as
    parameters (:func:`run_params` of ``ctx.config``) and ``tags``; every epoch logs the numeric
    entries of the history row (train loss and accuracy, held-out loss and accuracy, per-modality
    held-out accuracies ``heldout_acc_<m>``, seconds) at step = epoch (1-based, as in
    ``run.history``). :meth:`log_run` adds what only the finished run knows (dataset, final
    metrics per split and model, configuration tags, artifacts) and ends the MLflow run; used as
    a context manager, the MLflow run ends as FAILED if training raises and FINISHED otherwise.

    Parameters
    ----------
    tracking_uri : str, optional
        See :func:`resolve_tracking_uri` (default ``$MLFLOW_TRACKING_URI`` or ``./mlruns``).
    experiment : str
        MLflow experiment name, created if missing.
    run_name : str, optional
        MLflow run name (the workbench run id replaces it in :meth:`log_run`).
    tags : mapping, optional
        Extra tags of the MLflow run.

    Examples
    --------
    >>> from workbench import load_dataset, train
    >>> with MLflowCallback(tracking_uri="file:/tmp/mlruns", experiment="demo") as cb:  # doctest: +SKIP
    ...     run = train(load_dataset("synthetic-imbalance", n=300), epochs=3, callbacks=[cb])
    ...     cb.log_run(run)
    """

    def __init__(self, *, tracking_uri: str | None = None, experiment: str = EXPERIMENT,
                 run_name: str | None = None, tags: Mapping[str, str] | None = None):
        if not experiment or not str(experiment).strip():
            raise ValueError("experiment: empty name")
        self.tracking_uri = resolve_tracking_uri(tracking_uri)
        self.experiment = experiment
        self.run_name = run_name
        self.tags = {str(k): str(v) for k, v in (tags or {}).items()}
        self.mlflow_run_id: str | None = None
        self._client = None

    @property
    def client(self):
        if self._client is None:
            self._client = _mlflow().MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    def _start(self, config: Any) -> str:
        values = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config or {})
        exp_id = _experiment_id(self.client, self.experiment)
        created = self.client.create_run(exp_id, run_name=self.run_name, tags=self.tags)
        self.mlflow_run_id = created.info.run_id
        _log_params(self.client, self.mlflow_run_id, run_params({"train": values}))
        return self.mlflow_run_id

    def on_epoch_end(self, ctx, epoch: int, row: dict) -> None:
        """Log ``row``'s numeric entries at step ``epoch + 1`` (opening the MLflow run first)."""
        mid = self.mlflow_run_id or self._start(getattr(ctx, "config", None))
        _log_metrics(self.client, mid, [(epoch + 1, history_metrics(row))], int(time.time() * 1000))

    def log_run(self, run: Run, *, sweep_id: str | None = None) -> str:
        """Add the finished ``run``'s tags, dataset parameters, final metrics and artifacts; end the
        MLflow run (FINISHED). Returns the MLflow run id."""
        if self.mlflow_run_id is None:
            raise ValueError("run: no epoch was logged by this callback (pass it to train(callbacks=[...]))")
        client, mid = self.client, self.mlflow_run_id
        for key, value in run_tags(run.config, run.run_id, sweep_id=sweep_id).items():
            client.set_tag(mid, key, value)
        logged = client.get_run(mid).data.params
        extra = {k: v for k, v in run_params(run.config).items() if k not in logged}
        _log_params(client, mid, extra)
        final_step = int(run.history["epoch"].max()) if len(run.history) else 0
        _log_metrics(client, mid, [(final_step, final_metrics(run.metrics))], int(time.time() * 1000))
        if run.path is not None:
            _log_artifacts(client, mid, run)
        client.set_terminated(mid, status="FINISHED")
        return mid

    def __enter__(self) -> MLflowCallback:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.mlflow_run_id is None:
            return
        status = self.client.get_run(self.mlflow_run_id).info.status
        if status == "RUNNING":
            self.client.set_terminated(self.mlflow_run_id, status="FAILED" if exc_type else "FINISHED")
