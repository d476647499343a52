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

Parallel trials run on the sweep layer's Dask cluster (:func:`workbench.jobs.sweep.open_client`: a
``LocalCluster`` of ``n_workers`` processes, or any cluster by ``scheduler`` address / ``client``): one
task per worker, each loading the study and running trials until the study holds ``n_trials``; a
one-lease ``distributed.Semaphore`` around "count the trials, start one" keeps the total exact. The sampler is TPE with
``constant_liar=True`` (Optuna's setting for parallel workers: running trials count as bad, so two workers
do not sample the same point), seeded per worker. The study lives either in the SQLite file (every
worker opens it: a shared filesystem) or, with ``storage="dask"``, on the Dask scheduler through
``optuna_integration.DaskStorage`` (Optuna's storage hosted by the scheduler, workers talk to it over
Dask's comms; by default it wraps the same SQLite file, written by the scheduler, so the study outlives
the cluster; ``"dask:URL"`` wraps another storage URL, ``"dask:"`` the scheduler's memory only).
A worker killed mid-study: its task is re-run by Dask on another worker, its running trial is marked
failed (heartbeats for SQL storages; for the Dask storage, when no task of the call runs any more) and
another trial takes its place; completed trials are never lost (a killed process is tested on the
SQLite path; the Dask path's kill is not tested).

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
import os
import re
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.progress import progress_bar
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


_STUDY_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}")


def studies_dir(runs_dir: str | Path | None) -> Path:
    """``RUNS/.studies``: the studies' SQLite files and their saved results (``STUDY/result.json``)."""
    return RunStore(runs_dir).root / ".studies"


def list_studies(runs_dir: str | Path | None = None) -> list[str]:
    """Names of the studies whose result was saved under ``RUNS/.studies`` (newest first).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     list_studies(tmp)
    []
    """
    folder = studies_dir(runs_dir)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and (p / "result.json").is_file()]
    return [p.name for p in sorted(found, key=lambda p: (p / "result.json").stat().st_mtime, reverse=True)]


def load_study_result(study_name: str, runs_dir: str | Path | None = None) -> TuneResult:
    """The saved :class:`TuneResult` of ``study_name`` (written by :func:`tune` after every search).

    Raises ``ValueError`` for a name that is not a listed study (no path outside ``RUNS/.studies``
    is ever read).
    """
    if study_name not in list_studies(runs_dir):
        raise ValueError(f"study: {study_name!r} is not a saved study in {studies_dir(runs_dir)}")
    return TuneResult.load(studies_dir(runs_dir) / study_name)


def default_storage(runs_dir: str | Path | None, study_name: str) -> str:
    """``sqlite:///RUNS/.studies/STUDY.db`` (the folder created)."""
    folder = studies_dir(runs_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(folder / f'{study_name}.db').resolve()}"


def open_storage(storage: str, *, client=None, heartbeat_s: int = _HEARTBEAT_S, grace_s: int = _GRACE_S):
    """The Optuna storage that ``storage`` names: ``"dask"`` / ``"dask:URL"`` -> ``optuna_integration.DaskStorage``
    on ``client``'s scheduler (in its memory, or wrapping ``URL``); an SQL URL -> ``RDBStorage`` with heartbeats;
    anything else is passed to Optuna as is.

    Examples
    --------
    >>> type(open_storage("sqlite:///:memory:")).__name__
    'RDBStorage'
    >>> open_storage("dask")
    Traceback (most recent call last):
    ValueError: storage 'dask': the study is hosted by a Dask scheduler; give n_workers >= 2, a scheduler or a client
    """
    optuna = _optuna()
    if storage == "dask" or storage.startswith("dask:"):
        if client is None:
            raise ValueError(f"storage {storage!r}: the study is hosted by a Dask scheduler; give n_workers >= 2, "
                             "a scheduler or a client")
        try:
            from optuna_integration import DaskStorage
        except ImportError as exc:
            raise ImportError(f"storage 'dask' needs optuna-integration ({exc}): pip install optuna-integration") from exc
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return DaskStorage(storage[5:] or None, client=client)
    if storage.startswith(("sqlite:", "postgresql", "mysql")):
        with warnings.catch_warnings():
            # heartbeats are "experimental" in Optuna since 2.9; they are what makes a killed trial recoverable
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(storage, heartbeat_interval=heartbeat_s, grace_period=grace_s)
    return storage


def optimize(objective: Callable[[dict, Any], float], space: Mapping[str, Any], *, n_trials: int,
             direction: str = "maximize", storage: str, study_name: str, seed: int = 0, pruner=None,
             heartbeat_s: int = _HEARTBEAT_S, grace_s: int = _GRACE_S, client=None, n_workers: int | None = None,
             progress: bool = False):
    """Run ``objective(params, trial)`` until the study holds ``n_trials`` finished (complete or pruned)
    trials; resumes a study of the same name in ``storage``. Returns the Optuna study.

    A trial whose process died (no heartbeat for ``grace_s`` seconds; SQL storages) is marked FAIL
    when a study is resumed, and a new trial takes its place. With ``client`` (a ``distributed.Client``)
    the trials run in parallel on its cluster, ``n_workers`` tasks at once (default: one per worker);
    ``objective`` must then pickle (a module-level function or object).

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
    if n_workers is not None and (not isinstance(n_workers, int) or n_workers < 1):
        raise ValueError(f"n_workers: must be a positive integer, got {n_workers!r}")
    space = check_space(space)
    optuna = _optuna()
    opened = open_storage(storage, client=client, heartbeat_s=heartbeat_s, grace_s=grace_s)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(study_name=study_name, storage=opened, direction=direction, load_if_exists=True,
                                    sampler=optuna.samplers.TPESampler(seed=seed), pruner=pruner)
    _fail_stale_trials(study)
    if client is not None:
        _optimize_on_dask(study, opened, objective, space, n_trials=n_trials, client=client, n_workers=n_workers,
                          seed=seed, pruner=pruner, progress=progress)
        return study
    remaining = n_trials - len(study.get_trials(deepcopy=False, states=_finished_states()))
    if remaining > 0:
        study.optimize(lambda trial: objective(suggest(trial, space), trial), n_trials=remaining,
                       catch=(FloatingPointError,), show_progress_bar=progress)
    return study


def _finished_states() -> tuple:
    from optuna.trial import TrialState

    return TrialState.COMPLETE, TrialState.PRUNED


def _heartbeats(storage) -> bool:
    from optuna.storages._heartbeat import is_heartbeat_enabled

    return not isinstance(storage, str) and is_heartbeat_enabled(storage)


def _fail_stale_trials(study) -> int:
    """Mark FAIL the trials left RUNNING by a killed process (SQL storages with heartbeats); returns how many.

    Optuna's ``fail_stale_trials`` fails a RUNNING trial whose last heartbeat is older than the grace
    period, but skips one with no heartbeat at all: a process killed between creating a trial and its
    first heartbeat (a few milliseconds) left that trial RUNNING forever, and a resumed study counted it.
    Such a trial is failed here too once it started more than the grace period ago (a live process
    writes its first heartbeat as the trial starts)."""
    import datetime

    optuna = _optuna()
    storage = study._storage
    if not _heartbeats(storage):
        return 0
    before = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    rdb = getattr(storage, "_backend", storage)  # a study's RDBStorage comes wrapped in a cache
    grace = rdb.grace_period or 2 * rdb.heartbeat_interval
    cutoff = datetime.datetime.now() - datetime.timedelta(seconds=grace)
    for trial_id in _trials_without_heartbeat(rdb, study._study_id, started_before=cutoff):
        try:
            storage.set_trial_state_values(trial_id, state=optuna.trial.TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:  # finished meanwhile, or failed by another process
            pass
    return len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,))) - before


def _trials_without_heartbeat(storage, study_id: int, *, started_before) -> list[int]:
    """Ids of the study's RUNNING trials that have no heartbeat row and started before ``started_before``."""
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session
    from optuna.trial import TrialState

    with _create_scoped_session(storage.scoped_session) as session:
        rows = (session.query(models.TrialModel)
                .filter(models.TrialModel.study_id == study_id, models.TrialModel.state == TrialState.RUNNING,
                        ~models.TrialModel.heartbeats.any())
                .all())
        # compared in Python: the column holds UTC, the property local time, as Optuna writes it
        return [row.trial_id for row in rows if row.datetime_start is not None and row.datetime_start < started_before]


def _fail_orphans(study) -> int:
    """Mark FAIL the trials still RUNNING when no task of this call runs (a storage without heartbeats,
    one driver per study); returns how many."""
    from optuna.trial import TrialState

    orphans = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for t in orphans:
        study._storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL)
    return len(orphans)


def _optimize_on_dask(study, storage, objective, space, *, n_trials: int, client, n_workers: int | None, seed: int,
                      pruner, progress: bool, rounds: int = 5) -> None:
    """Rounds of ``n_workers`` trial loops (:func:`_trial_loop`) on ``client`` until the study holds
    ``n_trials`` finished trials; a round ends when every task has; a further round only replaces trials
    lost to killed workers (it stops when a round finishes nothing new)."""
    from distributed import KilledWorker

    k = n_workers or max(1, len(client.scheduler_info().get("workers", {})))
    heartbeat = _heartbeats(storage)
    lock = f"optuna-{study.study_name}-{os.getpid()}-{time.time_ns()}"
    bar = progress_bar(range(n_trials), enabled=progress, desc="trials", total=n_trials, leave=True)
    done = len(study.get_trials(deepcopy=False, states=_finished_states()))
    for r in range(rounds):
        if not heartbeat:
            _fail_orphans(study)  # left RUNNING by a dead driver or by the workers killed in the last round
        remaining = n_trials - done
        if remaining <= 0:
            break
        first = len(study.get_trials(deepcopy=False))
        seeds = np.random.SeedSequence([seed, r, first]).generate_state(k)
        futures = [client.submit(_trial_loop, study.study_name, _shipped(storage), objective, space, n_trials=n_trials,
                                 max_started=first + 2 * remaining, seed=int(seeds[i]), pruner=pruner, lock=lock,
                                 pure=False, key=f"optuna-trials-{study.study_name}-r{r}-{i}-{first}")
                   for i in range(min(k, remaining))]
        while not all(f.done() for f in futures):
            time.sleep(0.5)
            _advance(bar, len(study.get_trials(deepcopy=False, states=_finished_states())))
        errors = [f.exception() for f in futures if f.status == "error"]
        raised = [e for e in errors if not isinstance(e, KilledWorker)]
        if raised:
            raise raised[0]
        now = len(study.get_trials(deepcopy=False, states=_finished_states()))
        _advance(bar, now)
        if now == done:
            break  # nothing finished this round: every trial failed; do not loop on a failing objective
        done = now
    if hasattr(bar, "close"):
        bar.close()


def _shipped(storage):
    """What a worker is sent for ``storage``: a DaskStorage by its name (rebuilt there without the
    experimental-class warning on every unpickling), any other storage as is."""
    return ("dask-storage", storage.name) if type(storage).__name__ == "DaskStorage" else storage


def _unshipped(storage):
    if isinstance(storage, tuple) and storage[:1] == ("dask-storage",):
        from optuna.exceptions import ExperimentalWarning
        from optuna_integration import DaskStorage

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            return DaskStorage(None, storage[1], None, False)
    return storage


def _advance(bar, value: int) -> None:
    if hasattr(bar, "n"):
        bar.update(max(0, value - bar.n))


def _trial_loop(study_name: str, storage, objective, space, *, n_trials: int, max_started: int, seed: int, pruner,
                lock: str) -> int:
    """On a Dask worker: run trials of the study until it holds ``n_trials`` finished or running ones (or
    ``max_started`` trials in all: failures are replaced, not forever). "Count, then start a trial" is
    done under a one-lease ``distributed.Semaphore`` named ``lock``, released by the objective as soon as
    its trial exists, so parallel workers never overshoot. A semaphore, not a ``distributed.Lock``: its
    lease expires when the worker holding it dies (``distributed.scheduler.locks.lease-timeout``), where a
    lock held by a killed worker would block every other worker for good. Returns the number of trials
    this task ran."""
    from distributed import Semaphore
    from optuna.trial import TrialState

    from workbench.jobs.sweep import _limit_threads

    _limit_threads()
    optuna = _optuna()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.load_study(study_name=study_name, storage=_unshipped(storage), pruner=pruner,
                                  sampler=optuna.samplers.TPESampler(seed=seed, constant_liar=True))
    mutex, ran = Semaphore(max_leases=1, name=lock), 0
    counted = (*_finished_states(), TrialState.RUNNING)
    while True:
        mutex.acquire()
        held = [True]

        def run(trial, held=held):
            mutex.release()
            held[0] = False
            return objective(suggest(trial, space), trial)

        try:
            _fail_stale_trials(study)
            if (len(study.get_trials(deepcopy=False, states=counted)) >= n_trials
                    or len(study.get_trials(deepcopy=False)) >= max_started):
                return ran
            study.optimize(run, n_trials=1, catch=(FloatingPointError,))
            ran += 1
        finally:
            if held[0]:
                mutex.release()


@dataclasses.dataclass
class _RunObjective:
    """A trial of :func:`tune`: train (or read back) one run per seed, the mean of their validation metric.
    A plain object, so that Dask ships it to workers."""

    dataset: str
    seeds: list
    epochs: int
    strategy: str
    fusion: str
    dataset_params: dict
    strategy_params: dict
    fixed: dict
    fields: list
    metric: str
    prune: bool
    runs_dir: str | None

    def __call__(self, params: dict, trial) -> float:
        from workbench.jobs.sweep import Cell
        from workbench.training.train import train

        store = RunStore(self.runs_dir)
        config = {k: v for k, v in params.items() if k in self.fields}
        sp = {**self.strategy_params, **{k: v for k, v in params.items() if k not in self.fields}}
        fusion = config.pop("fusion", self.fusion)
        values, run_ids = [], []
        for i, s in enumerate(self.seeds):
            cell = Cell(self.dataset, self.strategy, fusion, s, self.epochs, dict(self.dataset_params), sp,
                        {**self.fixed, **config})
            if store.is_complete(cell.run_id):  # idempotent by run id: the same configuration is read back
                history = store.load(cell.run_id).history
            else:
                callbacks = [_PruneOnHistory(trial, self.metric)] if self.prune and i == 0 else []
                run = train(self.dataset, fusion=fusion, epochs=self.epochs, seed=s, strategy=self.strategy,
                            strategy_params=sp, dataset_params=self.dataset_params, runs_dir=self.runs_dir,
                            progress=False, callbacks=callbacks, **{**self.fixed, **config})
                history = run.history
            run_ids.append(cell.run_id)
            values.append(run_value(history, self.metric))
            trial.set_user_attr("run_ids", run_ids)
            trial.set_user_attr("values", values)
        return float(np.mean(values))


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
         seed: int = 0, prune: bool = True, n_workers: int | None = None, scheduler: str | None = None,
         client=None, progress: bool = False, **train_params: Any) -> TuneResult:
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
        Optuna storage URL and study name (default: a name hashed from everything above). ``"dask"``: the
        study is hosted by the Dask scheduler (``optuna_integration.DaskStorage``) over the default SQLite
        file; ``"dask:URL"`` over another storage, ``"dask:"`` in the scheduler's memory.
    seed : int
        Seed of the TPE sampler (of the first worker's; the others get seeds derived from it).
    prune : bool
        Prune trials on the first seed's per-epoch metric (median rule, after 2 epochs and 3 trials).
    n_workers, scheduler, client
        Parallel trials on Dask, as for sweeps: ``n_workers`` >= 2 local worker processes, or a running
        cluster by ``scheduler`` address or ``client`` (``runs_dir`` then on a filesystem every worker
        shares). Default: trials one after another in this process (``storage="dask"``: one worker per core).
    progress : bool
        A progress bar over finished trials.

    Returns
    -------
    TuneResult
    """
    from workbench.jobs.sweep import open_client

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
    if not _STUDY_NAME.fullmatch(study_name):
        raise ValueError(f"study_name: {study_name!r} must be letters, digits, '_', '-' or '.' and not start with "
                         "'.' (it names a file and a folder under RUNS/.studies)")
    on_dask = storage == "dask" or (storage or "").startswith("dask:")
    if storage is None or storage == "dask":
        storage = ("dask:" if on_dask else "") + default_storage(runs_dir, study_name)
    parallel = client is not None or scheduler is not None or on_dask or (n_workers or 1) > 1
    if on_dask and client is None and scheduler is None and n_workers == 1:
        raise ValueError("n_workers: storage 'dask' runs the trials on a Dask cluster; give n_workers >= 2 "
                         "(or a scheduler)")
    optuna = _optuna()
    pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2) if prune else optuna.pruners.NopPruner()

    objective = _RunObjective(dataset, seeds=seeds, epochs=epochs, strategy=strategy, fusion=fusion,
                              dataset_params=dict(dataset_params or {}), strategy_params=dict(strategy_params or {}),
                              fixed=fixed, fields=sorted(fields), metric=metric, prune=prune,
                              runs_dir=str(RunStore(runs_dir).root.resolve()))
    if not parallel:
        study = optimize(objective, space, n_trials=n_trials, direction=direction, storage=storage,
                         study_name=study_name, seed=seed, pruner=pruner, progress=progress)
        return _saved(study_result(study, metric=metric, seeds=seeds, storage=storage), runs_dir)
    RunStore(runs_dir).check_writable()
    with open_client(client, scheduler, n_workers, dashboard=False) as cl:
        study = optimize(objective, space, n_trials=n_trials, direction=direction, storage=storage,
                         study_name=study_name, seed=seed, pruner=pruner, client=cl, n_workers=n_workers,
                         progress=progress)
        return _saved(study_result(study, metric=metric, seeds=seeds, storage=storage), runs_dir)


def _saved(result: TuneResult, runs_dir: str | Path | None) -> TuneResult:
    """Save ``result`` as ``RUNS/.studies/STUDY/`` (atomically, replacing the last one), where the
    dashboard's compare tab and :func:`load_study_result` find it."""
    result.save(studies_dir(runs_dir) / result.study_name)
    return result


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
