"""Sweeps: a grid of training runs (datasets x strategies x fusions x seeds) fanned out on Dask.

Dask (``dask.distributed``) is the engine; this module only turns a grid into cells, submits
one task per cell and collects a tidy table. Where it runs:

- ``workers=1`` (and no client/scheduler): every cell in this process, one after another;
- default: a ``LocalCluster`` sized to the machine (one single-threaded worker process per core);
- ``scheduler="tcp://HOST:PORT"`` or ``client=distributed.Client(...)``: any Dask cluster, with no
  code change. ``runs_dir`` must then be a folder every worker can write (a shared filesystem).

Faults:

- **Idempotent.** A cell's run id is :func:`workbench.training.train.run_id_for` of its config and of the
  fingerprint of its data (the driver loads each dataset once to hash it), so a re-run skips
  cells whose run is complete and valid (:meth:`RunStore.validate`) and redoes incomplete and
  failed ones (``force=True`` redoes all). A "complete" run with malformed files is moved to
  ``RUNS/.invalid/`` (kept) with a warning naming the file, and redone.
- **Two sweeps, one run.** The run store's lock lets one process train a run; the cell of the
  other sweep comes back ``failed`` ("another process is training run ...") without touching
  the run folder.
- **Unwritable runs folder**: checked once before any cell starts (:class:`RunError`).
- **A failing cell does not stop the others.** Errors of the cell itself (bad hyperparameter,
  unknown strategy, non-finite loss -> ``FloatingPointError``, out of memory) are caught on the
  worker, the run is recorded with :meth:`RunStore.mark_failed` and the row says ``failed`` with the
  error. ``OSError`` (e.g. a shared filesystem hiccup) is raised so that Dask retries the cell
  (``retries=``); when retries are spent the driver marks the run failed.
- **A worker killed mid-run** leaves only ``.incomplete/RUN_ID`` (the run store renames a run into
  place when every file is written); the scheduler re-runs the task on another worker, which
  resumes from the last epoch checkpoint.
- **An unreachable scheduler** raises :class:`SweepError` after ``connect_timeout`` seconds.

Every sweep writes a manifest ``RUNS/.sweeps/SWEEP_ID/`` (a :class:`SweepResult`) so that
``workbench compare SWEEP_ID`` finds its runs; the sweep id is a hash of the sorted run ids.

Example
-------
>>> import tempfile
>>> from workbench.jobs.sweep import sweep
>>> table = sweep({"dataset": ["synthetic-imbalance"], "fusion": ["concat", "late"], "seed": [0, 1],
...                "epochs": 2, "dataset_params": {"n": 200}},
...               runs_dir=tempfile.mkdtemp(), workers=1, progress=False)
>>> sorted(table["status"].unique())
['complete']
>>> len(table)
4
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.progress import progress_bar
from workbench.store.results import Result
from workbench.store.runs import (
    Run,
    RunError,
    RunLockedError,
    RunStore,
    RunWarning,
    dataset_fingerprint,
    load_run,
)
from workbench.training.config import TrainConfig, config_fields, config_hash
from workbench.training.config import config_key as training_config_key
from workbench.training.train import run_id_for

# grid axes that take a list of values; everything else in a grid mapping is one value for every cell
GRID_AXES = ("dataset", "strategy", "fusion", "seed")
STATUS_COLUMNS = ["run_id", "dataset", "strategy", "fusion", "seed", "epochs", "status", "error", "wall_s"]


class SweepError(RuntimeError):
    """A sweep cannot start: unreachable scheduler, bad grid."""


@dataclass
class Cell:
    """One training run of a sweep: what :func:`workbench.train` is called with."""

    dataset: str
    strategy: str = "naive"
    fusion: str = "concat"
    seed: int = 0
    epochs: int = 30
    dataset_params: dict = field(default_factory=dict)
    strategy_params: dict = field(default_factory=dict)
    train_params: dict = field(default_factory=dict)  # other TrainConfig fields: lr, batch_size, ...
    # dataset_fingerprint of the loaded data (filled on first use; "unloadable" when loading fails)
    fingerprint: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        """``train_params`` must name :class:`TrainConfig` fields other than the cell's own (checked
        up front, so a typo fails the sweep before any cell trains; their values are checked per cell)."""
        own = {"strategy", "fusion", "seed", "epochs", "strategy_params", "progress"}
        allowed = set(config_fields(TrainConfig)) - own
        unknown = sorted(set(self.train_params) - allowed)
        if unknown:
            raise SweepError(f"train parameter(s) {unknown} of cell {self.dataset}/{self.strategy}: not a "
                             f"TrainConfig field other than the cell's own; choose from {sorted(allowed)}")

    def data_fingerprint(self) -> str:
        if self.fingerprint is None:
            from workbench import load_dataset

            try:
                self.fingerprint = dataset_fingerprint(load_dataset(self.dataset, **self.dataset_params))
            except Exception:  # noqa: BLE001 -- the cell's own training reports the loading error
                self.fingerprint = "unloadable"
        return self.fingerprint

    def train_config(self) -> TrainConfig:
        return TrainConfig(fusion=self.fusion, epochs=self.epochs, seed=self.seed, strategy=self.strategy,
                           strategy_params=dict(self.strategy_params), progress=False, **self.train_params)

    @property
    def run_id(self) -> str:
        try:
            return run_id_for(self.dataset, self.train_config(), self.dataset_params,
                              fingerprint=self.data_fingerprint())
        except (TypeError, ValueError):
            # an invalid config still needs a stable id so that its failure is recorded
            h = hashlib.sha1(json.dumps(asdict(self), sort_keys=True, default=str).encode()).hexdigest()[:10]
            return f"{self.dataset}-{self.fusion}-{self.strategy}-s{self.seed}-invalid-{h}".replace("/", "-")

    def row(self, **extra: Any) -> dict:
        base = {"run_id": self.run_id, "dataset": self.dataset, "strategy": self.strategy, "fusion": self.fusion,
                "seed": self.seed, "epochs": self.epochs, "status": None, "error": None, "wall_s": None}
        return {**base, **extra}


def expand_grid(grid: Mapping[str, Any]) -> list[Cell]:
    """The cartesian product of a grid mapping.

    Keys in :data:`GRID_AXES` take a value or a list of values; ``epochs``, ``dataset_params``,
    ``strategy_params`` apply to every cell (``strategy_params`` may instead map strategy name ->
    params); any other key is a :class:`TrainConfig` field.

    Examples
    --------
    >>> cells = expand_grid({"dataset": "mfeat", "strategy": ["naive"], "seed": [0, 1, 2], "epochs": 3})
    >>> [(c.dataset, c.seed, c.epochs) for c in cells]
    [('mfeat', 0, 3), ('mfeat', 1, 3), ('mfeat', 2, 3)]
    """
    if "dataset" not in grid:
        raise SweepError("a sweep grid needs a 'dataset' entry (a name or a list of names)")
    axes = {k: _as_list(grid.get(k, Cell.__dataclass_fields__[k].default)) for k in GRID_AXES}
    epochs = int(grid.get("epochs", 30))
    dataset_params = dict(grid.get("dataset_params") or {})
    strategy_params = dict(grid.get("strategy_params") or {})
    per_strategy = bool(strategy_params) and all(isinstance(v, Mapping) for v in strategy_params.values()) \
        and set(strategy_params) <= set(axes["strategy"])
    known = set(GRID_AXES) | {"epochs", "dataset_params", "strategy_params"}
    train_params = {k: v for k, v in grid.items() if k not in known}
    cells = []
    for dataset, strategy, fusion, seed in itertools.product(*(axes[k] for k in GRID_AXES)):
        sp = dict(strategy_params.get(strategy, {})) if per_strategy else dict(strategy_params)
        cells.append(Cell(str(dataset), str(strategy), str(fusion), int(seed), epochs, dict(dataset_params), sp,
                          dict(train_params)))
    return cells


def _as_list(value: Any) -> list:
    if isinstance(value, str):
        return [v for v in value.split(",") if v]
    return list(value) if isinstance(value, (list, tuple, range)) else [value]


def _as_cells(grid: Mapping[str, Any] | Sequence[Cell | Mapping]) -> list[Cell]:
    cells = expand_grid(grid) if isinstance(grid, Mapping) else [c if isinstance(c, Cell) else Cell(**c) for c in grid]
    loaded: dict[str, str] = {}  # load every (dataset, params) once to fingerprint it
    for c in cells:
        key = json.dumps([c.dataset, c.dataset_params], sort_keys=True, default=str)
        if c.fingerprint is None and key in loaded:
            c.fingerprint = loaded[key]
        loaded[key] = c.data_fingerprint()
    unique = {c.run_id: c for c in cells}  # the same config twice would race on one run folder
    if not unique:
        raise SweepError("the sweep grid is empty")
    return list(unique.values())


# -- one cell (runs on a worker) -------------------------------------------------------------------

def _limit_threads() -> None:
    """One torch thread per Dask worker thread, so two workers do not oversubscribe the cores."""
    try:
        import torch
        from distributed import get_worker

        torch.set_num_threads(max(1, get_worker().state.nthreads))
    except (ImportError, ValueError):
        pass  # not inside a Dask worker: leave this process's setting alone


def metric_columns(metrics: dict, split: str = "test") -> dict:
    """``acc_fused``, ``acc_<modality>`` of one split of a run's ``metrics.json``."""
    return {f"acc_{k}": v for k, v in metrics.get(split, {}).items() if k != "n"}


def run_cell(cell: Cell, runs_dir: str) -> dict:
    """Train one cell and record it; errors of the cell itself come back as a ``failed`` row."""
    from workbench.training.train import train

    _limit_threads()
    store, t0 = RunStore(runs_dir), time.perf_counter()
    try:
        run = train(cell.dataset, fusion=cell.fusion, epochs=cell.epochs, seed=cell.seed, strategy=cell.strategy,
                    strategy_params=cell.strategy_params, dataset_params=cell.dataset_params, runs_dir=runs_dir,
                    progress=False, **cell.train_params)
    except RunLockedError as exc:  # another sweep trains this run now: leave its folder alone
        return cell.row(status="failed", error=str(exc), wall_s=time.perf_counter() - t0)
    except OSError:
        raise  # environment, not the cell: let Dask retry it
    except Exception as exc:  # noqa: BLE001 -- any error of this cell must not stop the sweep
        error = f"{type(exc).__name__}: {exc}"
        store.mark_failed(cell.run_id, {"cell": asdict(cell)}, error)
        return cell.row(status="failed", error=error, wall_s=time.perf_counter() - t0)
    return cell.row(run_id=run.run_id, status="complete", wall_s=time.perf_counter() - t0,
                    **metric_columns(run.metrics))


# -- the driver ------------------------------------------------------------------------------------

@dataclass
class SweepResult(Result):
    """The manifest of a sweep: one row per cell (status, error, test accuracies)."""

    cells: pd.DataFrame
    sweep_id: str = ""
    runs_dir: str = ""

    def run_ids(self, complete_only: bool = True) -> list[str]:
        ok = self.cells["status"].isin(["complete", "skipped"]) if complete_only else slice(None)
        return list(self.cells.loc[ok, "run_id"])


def sweep_dir(runs_dir: str | Path | None, sweep_id: str) -> Path:
    return RunStore(runs_dir).root / ".sweeps" / sweep_id


def load_sweep(sweep_id: str, runs_dir: str | Path | None = None) -> SweepResult:
    """Load the manifest of a sweep by id."""
    folder = sweep_dir(runs_dir, sweep_id)
    if not folder.is_dir():
        raise FileNotFoundError(f"no sweep {sweep_id!r} in {RunStore(runs_dir).root / '.sweeps'}")
    return SweepResult.load(folder)


def resolve_runs(sources: Sequence[str], runs_dir: str | Path | None = None) -> list[Run]:
    """Complete runs named by run id, run folder, sweep id (``sweep-...``) or ``all``, each once.

    Used by :func:`workbench.analyses.compare.compare` and the MLflow export.
    """
    store, ids = RunStore(runs_dir), []
    for src in sources:
        if src == "all":
            ids += [r for r in store.run_ids() if store.is_complete(r)]
        elif src.startswith("sweep-") and not store.path(src).exists():
            ids += load_sweep(src, runs_dir).run_ids()
        else:
            ids.append(src)
    runs = {}
    for rid in dict.fromkeys(ids):
        run = load_run(rid, runs_dir) if Path(rid).is_dir() else store.load(rid)
        runs[run.run_id] = run
    return list(runs.values())


def configuration_key(config: Mapping[str, Any]) -> str:
    """A short hash of a run's configuration across seeds: its dataset and the settings that
    change results (:func:`workbench.training.config.config_key`, the rule of the run id) but the seed.

    Examples
    --------
    >>> a = {"dataset": "d", "train": {"epochs": 3, "seed": 0}}
    >>> configuration_key(a) == configuration_key({**a, "train": {"epochs": 3, "seed": 1}})
    True
    """
    key = training_config_key(config["train"], seed=False)
    return config_hash({**key, "dataset": config.get("dataset"), "dataset_params": config.get("dataset_params") or {}})


@contextlib.contextmanager
def open_client(client=None, scheduler: str | None = None, workers: int | None = None, *,
                dashboard: bool = True, connect_timeout: float = 5.0) -> Iterator[Any]:
    """Yield a ``distributed.Client`` (or ``None`` for in-process), closing what it opened.

    ``client`` is used as is; ``scheduler`` connects to a running cluster; otherwise a
    ``LocalCluster`` with ``workers`` single-threaded processes (default: one per core), or
    ``None`` when ``workers == 1``.
    """
    if client is not None:
        yield client
        return
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            opened = Client(scheduler, timeout=connect_timeout)
        except (OSError, TimeoutError) as exc:
            raise SweepError(f"cannot reach the Dask scheduler at {scheduler} within {connect_timeout:g} s "
                             f"({type(exc).__name__}: {exc}); is `dask scheduler` running there?") from None
        with opened:
            yield opened
        return
    n = workers or os.cpu_count() or 1
    if n == 1:
        yield None
        return
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                           dashboard_address=":0" if dashboard else None, silence_logs=40)
    with cluster, Client(cluster) as opened:
        yield opened


def _skipped_row(cell: Cell, store: RunStore, metrics: dict) -> dict:
    return cell.row(status="skipped", **metric_columns(metrics))


def _valid_metrics(cell: Cell, store: RunStore) -> dict | None:
    """The validated metrics of the cell's complete run; None when it must be (re)done. A run
    that says complete but has malformed files is moved to ``.invalid/`` with a warning."""
    if not store.is_complete(cell.run_id):
        return None
    try:
        return store.validate(cell.run_id)[2]
    except RunError as exc:
        kept = store.quarantine(cell.run_id)
        warnings.warn(f"{exc}; moved the run to {kept} and training it again", RunWarning, stacklevel=3)
        return None


def _run_with_dask(client, todo: list[Cell], root: str, retries: int, progress: bool) -> list[dict]:
    from distributed import as_completed

    if progress and getattr(client, "dashboard_link", None):
        print(f"Dask dashboard: {client.dashboard_link}")
    futures = {client.submit(run_cell, cell, root, key=f"cell-{cell.run_id}", pure=False, retries=retries): cell
               for cell in todo}
    rows = []
    for fut in progress_bar(as_completed(futures), total=len(futures), enabled=progress, desc="sweep cells", leave=True):
        cell = futures[fut]
        try:
            rows.append(fut.result())
        except Exception as exc:  # noqa: BLE001 -- retries spent or the worker died too often
            error = f"{type(exc).__name__}: {exc}"
            RunStore(root).mark_failed(cell.run_id, {"cell": asdict(cell)}, error)
            rows.append(cell.row(status="failed", error=error))
        fut.release()
    return rows


def sweep(
    grid: Mapping[str, Any] | Sequence[Cell | Mapping],
    *,
    runs_dir: str | Path | None = None,
    client=None,
    scheduler: str | None = None,
    workers: int | None = None,
    retries: int = 2,
    force: bool = False,
    progress: bool = True,
    dashboard: bool = True,
    connect_timeout: float = 5.0,
) -> pd.DataFrame:
    """Run every cell of a grid (skipping complete runs) and return one row per cell.

    Parameters
    ----------
    grid : mapping or sequence
        A grid mapping for :func:`expand_grid` (``{"dataset": [...], "strategy": [...], "seed": [...],
        "epochs": 3, ...}``) or a list of :class:`Cell` (or dicts of Cell fields).
    runs_dir : path, optional
        Run store root (default ``./runs`` or ``$WORKBENCH_RUNS``); shared by every worker.
    client : distributed.Client, optional
        Run on this Dask cluster.
    scheduler : str, optional
        Address of a running Dask scheduler, e.g. ``tcp://10.0.0.5:8786``.
    workers : int, optional
        Local worker processes (default: one per core); ``1`` runs in this process.
    retries : int
        Dask retries of a cell whose task raised (environment errors); cell errors are not retried.
    force : bool
        Redo complete runs too.
    progress : bool
        A progress bar over finished cells, the dashboard address and a failure summary.
    dashboard : bool
        Start the dashboard of a LocalCluster.
    connect_timeout : float
        Seconds to wait for ``scheduler`` before raising :class:`SweepError`.

    Returns
    -------
    pandas.DataFrame
        ``run_id, dataset, strategy, fusion, seed, epochs, status (complete|skipped|failed), error,
        wall_s, acc_fused, acc_<modality>...``; ``.attrs["sweep_id"]`` names the saved manifest.

    Examples
    --------
    >>> sweep({"dataset": "synthetic-xor", "seed": [0, 1], "epochs": 2,   # doctest: +SKIP
    ...        "dataset_params": {"n": 300}}, workers=2)
    """
    cells = _as_cells(grid)
    store = RunStore(runs_dir)
    store.check_writable()
    root = str(store.root.resolve())
    valid = {c.run_id: m for c in cells if not force and (m := _valid_metrics(c, store)) is not None}
    todo = [c for c in cells if c.run_id not in valid]
    rows = [_skipped_row(c, store, valid[c.run_id]) for c in cells if c.run_id in valid]
    if todo:
        with open_client(client, scheduler, workers, dashboard=dashboard, connect_timeout=connect_timeout) as cl:
            if cl is None:
                rows += [run_cell(c, root) for c in progress_bar(todo, total=len(todo), enabled=progress, desc="sweep cells", leave=True)]
            else:
                rows += _run_with_dask(cl, todo, root, retries, progress)
    order = {c.run_id: i for i, c in enumerate(cells)}
    table = pd.DataFrame(rows)
    table = table.assign(_o=table["run_id"].map(order)).sort_values("_o").drop(columns="_o").reset_index(drop=True)
    table = table[STATUS_COLUMNS + [c for c in table.columns if c not in STATUS_COLUMNS]]
    sweep_id = "sweep-" + hashlib.sha1("\n".join(sorted(order)).encode()).hexdigest()[:10]
    SweepResult(table, sweep_id=sweep_id, runs_dir=root).save(sweep_dir(store.root, sweep_id))
    table.attrs["sweep_id"] = sweep_id
    if progress:
        print(summarize(table))
    return table


def summarize(table: pd.DataFrame) -> str:
    """A few lines: counts by status, then every failed cell with its error."""
    counts = table["status"].value_counts().to_dict()
    lines = [f"sweep {table.attrs.get('sweep_id', '')}: {len(table)} cells, "
             + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))]
    for r in table[table["status"] == "failed"].itertuples():
        lines.append(f"  FAILED {r.run_id}: {r.error}")
    return "\n".join(lines)
