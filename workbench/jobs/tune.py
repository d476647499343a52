"""Hyperparameter search with Optuna over the same runs, run ids and run store as sweeps.

:func:`tune` samples a configuration per trial (TPE, seeded), trains it for each of ``seeds``
through :func:`workbench.train` (a run folder per seed, with the sweep's idempotent run id: a
configuration already complete in the store is read back, not retrained), and scores it by a
**validation** metric of the per-epoch history (``heldout_*``; the trainer carves the validation
split out of the training split, so the calibration and test splits are never looked at).
The score of a run is the metric at the epoch whose weights the run keeps (the best held-out loss,
early stopping's choice), averaged over seeds. Trials are pruned on the per-epoch history of the
first seed (``optuna.pruners.MedianPruner``).

Studies live in a local SQLite file (``RUNS/.studies/STUDY.db``, or any Optuna storage URL), so
a killed process loses no completed trial: running :func:`tune` again with the same study resumes
it, marks trials left running by a dead process as failed (Optuna heartbeats) and runs only the
trials still missing. :func:`optimize` is the same loop for any objective ``params -> value``.

Validation split: the trainer holds out ``val_fraction`` of the training split only when
``patience`` is set; :func:`tune` sets ``patience = epochs`` (no early stop, the best epoch's
weights kept) unless given, so the validation metrics exist.

Example
-------
>>> res = tune("synthetic-imbalance", {"alpha": {"low": 0.1, "high": 1.0}}, strategy="ogm_ge",
...            n_trials=4, epochs=3, dataset_params={"n": 300})            # doctest: +SKIP
>>> res.best_params                                                          # doctest: +SKIP
{'alpha': 0.42}
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.store.results import Result
from workbench.store.runs import RunStore
from workbench.training.config import config_fields

DIRECTIONS = ("maximize", "minimize")
_HEARTBEAT_S, _GRACE_S = 5, 20


def _optuna():
    try:
        import optuna
    except ImportError as exc:
        raise ImportError(f"Optuna is not installed ({exc}): pip install optuna") from exc
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def check_space(space: Mapping[str, Any]) -> dict[str, Any]:
    """A search space ``{name: {"low", "high"[, "log", "type"]} | [choices]}``, checked (ValueError naming
    the parameter). Integer bounds give an integer parameter unless ``"type": "float"``.

    Examples
    --------
    >>> check_space({"lr": {"low": 1e-4, "high": 1e-1, "log": True}, "fusion": ["concat", "late"]})["lr"]["type"]
    'float'
    """
    if not space:
        raise ValueError("space: empty search space")
    out = {}
    for name, spec in space.items():
        if isinstance(spec, (list, tuple)):
            if not spec:
                raise ValueError(f"space[{name!r}]: no choices")
            out[name] = list(spec)
            continue
        if not isinstance(spec, Mapping) or "low" not in spec or "high" not in spec:
            raise ValueError(f"space[{name!r}]: expected {{'low': ..., 'high': ...}} or a list of choices")
        low, high = spec["low"], spec["high"]
        kind = spec.get("type") or ("int" if all(isinstance(v, int) and not isinstance(v, bool)
                                                 for v in (low, high)) else "float")
        if kind not in ("int", "float"):
            raise ValueError(f"space[{name!r}]: type must be 'int' or 'float', got {kind!r}")
        if not (math.isfinite(float(low)) and math.isfinite(float(high))) or float(low) >= float(high):
            raise ValueError(f"space[{name!r}]: needs finite low < high, got {low}, {high}")
        if spec.get("log") and float(low) <= 0:
            raise ValueError(f"space[{name!r}]: a log scale needs low > 0, got {low}")
        out[name] = {"low": low, "high": high, "log": bool(spec.get("log", False)), "type": kind}
    return out


def parse_space(items: Sequence[str]) -> dict[str, Any]:
    """``NAME=LOW:HIGH[:log]`` (range) or ``NAME=A,B,C`` (choices) strings as a search space.

    Examples
    --------
    >>> parse_space(["lr=1e-4:1e-1:log", "hidden=16:128", "fusion=concat,late"])["hidden"]
    {'low': 16, 'high': 128, 'log': False, 'type': 'int'}
    """
    def number(text: str) -> int | float:
        value = json.loads(text)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError
        return value

    space: dict[str, Any] = {}
    for item in items:
        name, sep, rest = item.partition("=")
        if not sep or not name.isidentifier():
            raise ValueError(f"--space {item!r}: expected NAME=LOW:HIGH[:log] or NAME=A,B,...")
        parts = rest.split(":")
        if len(parts) in (2, 3) and "," not in rest:
            try:
                low, high = number(parts[0]), number(parts[1])
            except (ValueError, json.JSONDecodeError):
                raise ValueError(f"--space {item!r}: LOW and HIGH must be numbers") from None
            if len(parts) == 3 and parts[2] != "log":
                raise ValueError(f"--space {item!r}: the third part can only be 'log'")
            space[name] = {"low": low, "high": high, "log": len(parts) == 3}
        else:
            choices = []
            for c in rest.split(","):
                try:
                    choices.append(json.loads(c))
                except json.JSONDecodeError:
                    choices.append(c)
            space[name] = choices
    return check_space(space)


def suggest(trial, space: Mapping[str, Any]) -> dict[str, Any]:
    """The trial's values for ``space`` (Optuna's ``suggest_*``)."""
    params = {}
    for name, spec in space.items():
        if isinstance(spec, list):
            params[name] = trial.suggest_categorical(name, spec)
        elif spec["type"] == "int":
            params[name] = trial.suggest_int(name, int(spec["low"]), int(spec["high"]), log=spec["log"])
        else:
            params[name] = trial.suggest_float(name, float(spec["low"]), float(spec["high"]), log=spec["log"])
    return params


@dataclasses.dataclass
class TuneResult(Result):
    """A study: ``trials`` (one row per trial: ``number``, ``state``, ``value``, one column per
    hyperparameter, ``run_ids``) and ``runs`` (one row per trained run: trial, seed, run id, value)."""

    trials: pd.DataFrame
    runs: pd.DataFrame
    best_params: dict = dataclasses.field(default_factory=dict)
    best_value: float = float("nan")
    metric: str = ""
    direction: str = "maximize"
    study_name: str = ""
    storage: str = ""

    def hyperparameters(self) -> list[str]:
        """The searched hyperparameters (the trial columns that are not bookkeeping)."""
        return [c for c in self.trials.columns if c not in ("number", "state", "value", "run_ids")]

    def sensitivity(self) -> pd.DataFrame:
        """Metric against each hyperparameter: one row per (hyperparameter, complete trial) with the
        trial's ``setting``, the ``mean`` over its seeds and the seeds' range (``seed_min``, ``seed_max``),
        ``n_seeds``; the table the sensitivity figures draw.

        Examples
        --------
        >>> t = pd.DataFrame({"number": [0, 1], "state": "COMPLETE", "value": [0.6, 0.7], "alpha": [0.2, 0.8],
        ...                   "run_ids": ["a,b", "c,d"]})
        >>> r = pd.DataFrame({"number": [0, 0, 1, 1], "seed": [0, 1, 0, 1], "run_id": list("abcd"),
        ...                   "value": [0.5, 0.7, 0.7, 0.7]})
        >>> TuneResult(t, r).sensitivity()[["setting", "mean", "seed_min", "seed_max"]].values.tolist()
        [[0.2, 0.6, 0.5, 0.7], [0.8, 0.7, 0.7, 0.7]]
        """
        done = self.trials[self.trials["state"] == "COMPLETE"]
        spread = self.runs.groupby("number")["value"].agg(["mean", "min", "max", "size"])
        rows = []
        for name in self.hyperparameters():
            for t in done.itertuples(index=False):
                number = int(t.number)
                if number not in spread.index:
                    continue
                s = spread.loc[number]
                rows.append({"hyperparameter": name, "number": number, "setting": getattr(t, name),
                             "mean": float(s["mean"]), "seed_min": float(s["min"]), "seed_max": float(s["max"]),
                             "n_seeds": int(s["size"])})
        out = pd.DataFrame(rows, columns=["hyperparameter", "number", "setting", "mean", "seed_min", "seed_max",
                                          "n_seeds"])
        return out.sort_values(["hyperparameter", "setting", "number"], kind="stable").reset_index(drop=True)


def default_storage(runs_dir: str | Path | None, study_name: str) -> str:
    """``sqlite:///RUNS/.studies/STUDY.db`` (the folder created)."""
    folder = RunStore(runs_dir).root / ".studies"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(folder / f'{study_name}.db').resolve()}"


def optimize(objective: Callable[[dict, Any], float], space: Mapping[str, Any], *, n_trials: int,
             direction: str = "maximize", storage: str, study_name: str, seed: int = 0, pruner=None,
             heartbeat_s: int = _HEARTBEAT_S, grace_s: int = _GRACE_S):
    """Run ``objective(params, trial)`` until the study holds ``n_trials`` finished (complete or pruned)
    trials; resumes a study of the same name in ``storage``. Returns the Optuna study.

    A trial whose process died (no heartbeat for ``grace_s`` seconds; SQL storages) is marked FAIL
    when a study is resumed, and a new trial takes its place.

    Examples
    --------
    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     study = optimize(lambda p, t: -(p["x"] - 0.3) ** 2, {"x": {"low": 0.0, "high": 1.0}}, n_trials=30,
    ...                      storage=f"sqlite:///{tmp}/s.db", study_name="toy")
    ...     abs(study.best_params["x"] - 0.3) < 0.1
    True
    """
    if not isinstance(n_trials, int) or isinstance(n_trials, bool) or n_trials < 1:
        raise ValueError(f"n_trials: must be a positive integer, got {n_trials!r}")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction: {direction!r} is not one of {', '.join(DIRECTIONS)}")
    space = check_space(space)
    optuna = _optuna()
    with warnings.catch_warnings():
        # heartbeats are "experimental" in Optuna since 2.9; they are what makes a killed trial recoverable
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        rdb = optuna.storages.RDBStorage(storage, heartbeat_interval=heartbeat_s, grace_period=grace_s) \
            if storage.startswith(("sqlite:", "postgresql", "mysql")) else storage
        study = optuna.create_study(study_name=study_name, storage=rdb, direction=direction, load_if_exists=True,
                                    sampler=optuna.samplers.TPESampler(seed=seed), pruner=pruner)
        # trials left RUNNING by a killed process (no heartbeat within the grace period) become FAIL
        optuna.storages.fail_stale_trials(study)
    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    remaining = n_trials - len(study.get_trials(deepcopy=False, states=done))
    if remaining > 0:
        study.optimize(lambda trial: objective(suggest(trial, space), trial), n_trials=remaining,
                       catch=(FloatingPointError,))
    return study


class _PruneOnHistory:
    """Trainer callback: reports the validation metric per epoch and stops a trial Optuna prunes."""

    def __init__(self, trial, metric: str):
        self.trial, self.metric = trial, metric

    def on_epoch_end(self, ctx, epoch: int, row: dict) -> None:
        value = row.get(self.metric)
        if value is None or not math.isfinite(float(value)):
            return
        self.trial.report(float(value), epoch + 1)
        if self.trial.should_prune():
            import optuna

            raise optuna.TrialPruned(f"pruned at epoch {epoch + 1} ({self.metric} = {float(value):.4f})")


def run_value(history: pd.DataFrame, metric: str) -> float:
    """``metric`` at the epoch of the smallest held-out loss (the weights the run keeps), else the last.

    Examples
    --------
    >>> h = pd.DataFrame({"epoch": [1, 2, 3], "heldout_loss": [0.9, 0.5, 0.7], "heldout_acc": [0.5, 0.8, 0.7]})
    >>> run_value(h, "heldout_acc")
    0.8
    """
    if metric not in history:
        raise ValueError(f"metric: {metric!r} is not in the run's history ({', '.join(history.columns)})")
    h = history.dropna(subset=[metric])
    row = h.loc[h["heldout_loss"].idxmin()] if "heldout_loss" in h and h["heldout_loss"].notna().any() else h.iloc[-1]
    return float(row[metric])


def tune(dataset: str, space: Mapping[str, Any], *, n_trials: int = 20, metric: str = "heldout_acc",
         direction: str = "maximize", seeds: Sequence[int] = (0,), epochs: int = 10, strategy: str = "naive",
         fusion: str = "concat", dataset_params: dict | None = None, strategy_params: dict | None = None,
         runs_dir: str | Path | None = None, storage: str | None = None, study_name: str | None = None,
         seed: int = 0, prune: bool = True, **train_params: Any) -> TuneResult:
    """Search ``space`` for the configuration with the best validation ``metric``; see the module docstring.

    Parameters
    ----------
    dataset : str
        Catalog name (as for sweeps: workers load it by name).
    space : mapping
        ``{name: {"low", "high"[, "log"]} | [choices]}``; names that are
        :class:`~workbench.training.config.TrainConfig` fields set the config (``lr``, ``hidden``,
        ``fusion`` ...), any other name is a parameter of ``strategy`` (e.g. OGM-GE's ``alpha``).
    n_trials : int
        Finished trials the study should hold (a resumed study runs only the missing ones).
    metric : str
        A validation column of the history: ``heldout_acc``, ``heldout_loss``, ``heldout_acc_<m>``...
    direction : {"maximize", "minimize"}
    seeds : sequence of int
        Each trial trains one run per seed; its value is the mean over seeds.
    epochs, strategy, fusion, dataset_params, strategy_params, **train_params
        The fixed part of every run's configuration.
    runs_dir : path, optional
        Run store root (the runs and, by default, the study's SQLite file under ``.studies/``).
    storage, study_name : str, optional
        Optuna storage URL and study name (default: a name hashed from everything above).
    seed : int
        Seed of the TPE sampler.
    prune : bool
        Prune trials on the first seed's per-epoch metric (median rule, after 2 epochs and 3 trials).

    Returns
    -------
    TuneResult
    """
    from workbench.jobs.sweep import Cell
    from workbench.training.train import train

    space = check_space(space)
    if not isinstance(n_trials, int) or isinstance(n_trials, bool) or n_trials < 1:
        raise ValueError(f"n_trials: must be a positive integer, got {n_trials!r}")
    if not (metric.startswith("heldout_")):
        raise ValueError(f"metric: {metric!r} is not a validation metric (heldout_*); tuning never reads the "
                         "calibration or test split")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction: {direction!r} is not one of {', '.join(DIRECTIONS)}")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds: at least one seed")
    fields = set(config_fields_names())
    fixed = {"patience": epochs, **train_params}
    for name in ("seed", "epochs", "strategy", "strategy_params", "progress"):
        if name in space:
            raise ValueError(f"space[{name!r}]: set by tune itself; not tunable")
    unknown_fixed = sorted(set(fixed) - fields)
    if unknown_fixed:
        raise ValueError(f"{unknown_fixed[0]}: not a TrainConfig field")
    if fixed.get("patience") is None or float(fixed.get("val_fraction", 0.1)) <= 0:
        raise ValueError("patience/val_fraction: tuning needs a validation split (patience set, val_fraction > 0)")
    key = json.dumps([dataset, dataset_params, space, metric, direction, seeds, epochs, strategy, fusion,
                      strategy_params, fixed, seed], sort_keys=True, default=str)
    study_name = study_name or f"tune-{hashlib.sha1(key.encode()).hexdigest()[:10]}"
    storage = storage or default_storage(runs_dir, study_name)
    store = RunStore(runs_dir)
    optuna = _optuna()
    pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2) if prune else optuna.pruners.NopPruner()

    def objective(params: dict, trial) -> float:
        config = {k: v for k, v in params.items() if k in fields}
        sp = {**(strategy_params or {}), **{k: v for k, v in params.items() if k not in fields}}
        cell_fusion = config.pop("fusion", fusion)
        values, run_ids = [], []
        for i, s in enumerate(seeds):
            cell = Cell(dataset, strategy, cell_fusion, s, epochs, dict(dataset_params or {}), sp, {**fixed, **config})
            if store.is_complete(cell.run_id):  # idempotent by run id: the same configuration is read back
                history = store.load(cell.run_id).history
            else:
                callbacks = [_PruneOnHistory(trial, metric)] if prune and i == 0 else []
                run = train(dataset, fusion=cell_fusion, epochs=epochs, seed=s, strategy=strategy, strategy_params=sp,
                            dataset_params=dataset_params, runs_dir=runs_dir, progress=False, callbacks=callbacks,
                            **{**fixed, **config})
                history = run.history
            run_ids.append(cell.run_id)
            values.append(run_value(history, metric))
            trial.set_user_attr("run_ids", run_ids)
            trial.set_user_attr("values", values)
        return float(np.mean(values))

    study = optimize(objective, space, n_trials=n_trials, direction=direction, storage=storage,
                     study_name=study_name, seed=seed, pruner=pruner)
    return study_result(study, metric=metric, seeds=seeds, storage=storage)


def config_fields_names() -> list[str]:
    """Names of the :class:`TrainConfig` fields."""
    from workbench.training.config import TrainConfig

    return list(config_fields(TrainConfig))


def study_result(study, *, metric: str, seeds: Sequence[int], storage: str) -> TuneResult:
    """The study's trials and runs as a :class:`TuneResult`."""
    rows, runs = [], []
    for t in study.get_trials(deepcopy=False):
        ids, values = t.user_attrs.get("run_ids", []), t.user_attrs.get("values", [])
        rows.append({"number": t.number, "state": t.state.name, "value": t.value, **t.params,
                     "run_ids": ",".join(ids)})
        runs += [{"number": t.number, "seed": s, "run_id": r, "value": v}
                 for s, r, v in zip(seeds, ids, values, strict=False)]
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    best = study.best_trial if complete else None
    return TuneResult(trials=pd.DataFrame(rows), runs=pd.DataFrame(runs, columns=["number", "seed", "run_id", "value"]),
                      best_params=dict(best.params) if best else {}, best_value=float(best.value) if best else math.nan,
                      metric=metric, direction=study.direction.name.lower(), study_name=study.study_name,
                      storage=storage)
