"""The runs of a run store as one table, how runs' settings differ, and learning curves across seeds.

What the dashboard's runs table, compare view and CSV exports show, computed here without any UI:

- :func:`runs_table`: one row per run folder (complete, failed, running or interrupted): dataset,
  strategy, fusion, seed, epochs, the training parameters that differ from :class:`TrainConfig`'s
  defaults, the test accuracy of the fused model and of the best and worst unimodal head, status
  and date; and every run's parameters as a long table (``parameters``).
- :func:`differing_parameters`: the parameters whose values differ between chosen runs (one
  column per run), and :func:`configuration_labels`: readable names of configurations made of
  those parameters (``lr=0.01, optimizer=sgd``) instead of config hashes.
- :func:`comparable_runs`: a default selection for the compare view: the runs of one
  configuration over seeds (and the configurations that share its seeds), never two unrelated runs.
- :func:`seed_curves`: a history column per epoch, averaged over the seeds of each configuration,
  with a Student-t interval at ``level`` (:func:`workbench.stats.intervals.t_interval`; ``n - 1``
  degrees of freedom, none when fewer than two seeds reached that epoch).
- :func:`compare_runs`: :func:`workbench.analyses.compare.compare` over any metric (every
  numeric history column's last epoch too), with configurations named by their differing parameters.

A *configuration* is a run's config without its seed (:func:`workbench.jobs.sweep.configuration_key`,
the rule of sweeps and of the comparison across seeds).

A run is *running* while a process holds its training lock (``.incomplete/RUN_ID.lock``): read from
``/proc/locks`` (Linux), never by taking the lock, so a trainer starting meanwhile is not refused.
Elsewhere, or when the lock is free, a run folder still under ``.incomplete/`` is *interrupted*.

Example
-------
>>> import tempfile
>>> from workbench import train
>>> root = tempfile.mkdtemp()
>>> for lr in (1e-3, 1e-2):
...     _ = train("synthetic-imbalance", epochs=1, lr=lr, runs_dir=root, dataset_params={"n": 200}, progress=False)
>>> table = runs_table(root)
>>> sorted(table.runs["params"])
['', 'lr=0.01']
>>> differing_parameters(table, list(table.runs["run_id"])).index.tolist()
['lr']
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.analyses.compare import Comparison, paired_differences, runs_frame, summarize_runs
from workbench.stats.intervals import LEVEL, check_level, t_interval
from workbench.store.results import Result
from workbench.store.runs import STATUS_COMPLETE, Run, RunError, RunStore
from workbench.training.config import config_class, config_fields, config_key

#: the columns of :attr:`RunsTable.runs`, in display order
RUN_COLUMNS = [
    "run_id",
    "status",
    "dataset",
    "strategy",
    "fusion",
    "seed",
    "epochs",
    "params",
    "acc_fused",
    "best_modality",
    "acc_best",
    "worst_modality",
    "acc_worst",
    "created",
    "dataset_params",
    "error",
    "configuration",
]
#: the columns a runs table shows (all but the configuration hash)
SHOWN_COLUMNS = RUN_COLUMNS[:-1]
#: parameters that have their own column in the runs table (not repeated in ``params``)
OWN_COLUMNS = ("dataset", "strategy", "fusion", "seed", "epochs")
STATUS_RUNNING = "running"
STATUS_INTERRUPTED = "interrupted"


@dataclass
class RunsTable(Result):
    """``runs``: one row per run folder (:data:`RUN_COLUMNS`); ``parameters``: long table of every
    run's parameters (``run_id, parameter, value``; values as text, dict parameters flattened to
    ``strategy_params.alpha`` etc.); ``root``: the runs folder."""

    runs: pd.DataFrame
    parameters: pd.DataFrame
    root: str = ""

    def complete(self) -> list[str]:
        """Ids of the complete runs."""
        return self.runs.loc[self.runs["status"] == STATUS_COMPLETE, "run_id"].tolist()


# -- parameters ------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    """A parameter value as stable text (JSON for lists and dicts, ``repr``-free: ``0.01``, ``sgd``, ``None``)."""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def _flatten(prefix: str, mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {f"{prefix}.{k}": v for k, v in sorted(mapping.items())}


def run_parameters(config: Mapping[str, Any]) -> dict[str, Any]:
    """Every setting of a run that changes its numbers, flat: ``dataset``, ``dataset_params.K``, the
    training fields of :func:`workbench.training.config.config_key` (seed included; dict fields
    flattened as ``strategy_params.K``, ``task_params.K``).

    Examples
    --------
    >>> p = run_parameters({"dataset": "d", "dataset_params": {"n": 3}, "train": {"lr": 0.01, "strategy_params": {"a": 1}}})
    >>> p["dataset_params.n"], p["lr"], p["strategy_params.a"], p["optimizer"]
    (3, 0.01, 1, 'adam')
    """
    out: dict[str, Any] = {"dataset": config.get("dataset")}
    out.update(_flatten("dataset_params", config.get("dataset_params") or {}))
    for name, value in config_key(dict(config.get("train") or {})).items():
        if isinstance(value, Mapping):
            out.update(_flatten(name, value))
        else:
            out[name] = value
    return out


def non_default_parameters(train: Mapping[str, Any]) -> dict[str, Any]:
    """The training settings of a run's ``train`` section that differ from :class:`TrainConfig`'s
    defaults (without those the runs table shows in their own columns: strategy, fusion, seed,
    epochs); strategy and task parameters set explicitly are listed as ``strategy_params.K``.

    Examples
    --------
    >>> non_default_parameters({"lr": 0.01, "optimizer": "adam", "seed": 3, "strategy_params": {"alpha": 0.5}})
    {'lr': 0.01, 'strategy_params.alpha': 0.5}
    """
    fields = config_fields(config_class(train))
    out: dict[str, Any] = {}
    for name, value in config_key(dict(train)).items():
        if name in OWN_COLUMNS:
            continue
        if isinstance(value, Mapping):
            out.update(_flatten(name, value))
        elif name in fields and value != fields[name].get_default(call_default_factory=True):
            out[name] = value
    return out


def _join(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={_text(v)}" for k, v in params.items())


# -- status of folders that are not complete runs --------------------------------------------------


def _held_flocks() -> set[tuple[int, int, int]] | None:
    """``(major, minor, inode)`` of every file with an flock held now (``/proc/locks``), or None without it."""
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    held = set()
    for line in lines:
        parts = line.split()
        if len(parts) >= 6 and parts[1] == "FLOCK":
            try:
                major, minor, inode = parts[5].split(":")
                held.add((int(major, 16), int(minor, 16), int(inode)))
            except ValueError:
                continue
    return held


def _lock_held(path: Path, held: set[tuple[int, int, int]] | None) -> bool:
    if held is None:
        return False
    try:
        st = path.stat()
    except OSError:
        return False
    return (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino) in held


def _stamp(path: Path) -> str | None:
    try:
        return _dt.datetime.fromtimestamp(path.stat().st_mtime).isoformat(timespec="seconds")
    except OSError:
        return None


def _read_loose_config(folder: Path) -> dict:
    """A failed run's ``config.json`` as far as it reads (it has no schema to meet)."""
    try:
        data = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# -- the table -------------------------------------------------------------------------------------


def _accuracy_columns(
    metrics: Mapping[str, Any], modalities: Sequence[str], split: str
) -> dict[str, Any]:
    scores = metrics.get(split, {}) or {}
    heads = {m: float(scores[m]) for m in modalities if isinstance(scores.get(m), (int, float))}
    fused = scores.get("fused")
    row: dict[str, Any] = {"acc_fused": float(fused) if isinstance(fused, (int, float)) else np.nan}
    if heads:
        best, worst = max(heads, key=heads.get), min(heads, key=heads.get)
        row.update(
            best_modality=best, acc_best=heads[best], worst_modality=worst, acc_worst=heads[worst]
        )
    return row


def _config_row(config: Mapping[str, Any]) -> dict[str, Any]:
    from workbench.jobs.sweep import configuration_key

    train = dict(config.get("train") or {})
    row = {
        "dataset": config.get("dataset"),
        "dataset_params": _join(config.get("dataset_params") or {}),
        "strategy": train.get("strategy"),
        "fusion": train.get("fusion"),
        "seed": train.get("seed"),
        "epochs": train.get("epochs"),
        "params": _join(non_default_parameters(train)),
        "created": config.get("created"),
    }
    try:
        row["configuration"] = configuration_key(config)
    except (KeyError, TypeError, ValueError):
        row["configuration"] = None
    return row


def runs_table(runs_dir: str | Path | RunStore | None = None, *, split: str = "test") -> RunsTable:
    """One row per run folder of ``runs_dir`` (see :data:`RUN_COLUMNS`), newest first.

    Parameters
    ----------
    runs_dir : path or RunStore, optional
        The runs folder (default ``./runs`` or ``$WORKBENCH_RUNS``).
    split : str
        The split whose accuracies fill ``acc_fused``, ``acc_best`` and ``acc_worst``.

    Returns
    -------
    RunsTable
        ``runs`` (one row per folder: complete runs with their configuration and accuracies, failed
        ones with their error and what their config says, ``running`` / ``interrupted`` ones from
        ``.incomplete/``; a malformed folder is listed with status ``unreadable`` and the reason)
        and ``parameters`` (long: every complete run's :func:`run_parameters` as text).

    Examples
    --------
    >>> runs_table("/nonexistent").runs.empty
    True
    """
    store = runs_dir if isinstance(runs_dir, RunStore) else RunStore(runs_dir)
    rows: list[dict[str, Any]] = []
    params: list[dict[str, Any]] = []
    for run_id in store.run_ids():
        folder = store.path(run_id)
        try:
            status = store.read_status(run_id)
        except RunError as exc:
            state = "unreadable" if (folder / "status.json").exists() else STATUS_INTERRUPTED
            rows.append(
                {
                    "run_id": run_id,
                    "status": state,
                    "error": str(exc) if state == "unreadable" else None,
                    "created": _stamp(folder),
                }
            )
            continue
        if status.status != STATUS_COMPLETE:
            loose = _read_loose_config(folder)
            row = _config_row(loose) if loose else {}
            rows.append(
                {
                    **row,
                    "run_id": run_id,
                    "status": status.status,
                    "error": status.error,
                    "created": row.get("created") or _stamp(folder / "status.json"),
                }
            )
            continue
        try:
            _, cfg, metrics = store.validate(run_id)
        except RunError as exc:
            rows.append(
                {
                    "run_id": run_id,
                    "status": "unreadable",
                    "error": str(exc),
                    "created": _stamp(folder),
                }
            )
            continue
        config = cfg.model_dump()
        rows.append(
            {
                "run_id": run_id,
                "status": STATUS_COMPLETE,
                **_config_row(config),
                **_accuracy_columns(metrics, cfg.modalities, split),
            }
        )
        params += [
            {"run_id": run_id, "parameter": k, "value": _text(v)}
            for k, v in run_parameters(config).items()
        ]
    rows += _unfinished(store, {r["run_id"] for r in rows if r["status"] == STATUS_COMPLETE})
    frame = pd.DataFrame(rows, columns=RUN_COLUMNS)
    frame = frame.sort_values(
        ["created", "run_id"], ascending=[False, True], na_position="last", kind="stable"
    )
    return RunsTable(
        runs=frame.reset_index(drop=True),
        parameters=pd.DataFrame(params, columns=["run_id", "parameter", "value"]),
        root=str(store.root),
    )


def _unfinished(store: RunStore, complete: set[str]) -> list[dict[str, Any]]:
    """Runs being trained now (their lock is held) and interrupted ones (a folder under ``.incomplete/``)."""
    incomplete = store.root / ".incomplete"
    if not incomplete.is_dir():
        return []
    held = _held_flocks()
    rows = []
    for lock in sorted(incomplete.glob("*.lock")):
        run_id = lock.name.removesuffix(".lock")
        if _lock_held(lock, held):
            rows.append({"run_id": run_id, "status": STATUS_RUNNING, "created": _stamp(lock)})
        elif (incomplete / run_id).is_dir() and run_id not in complete:
            rows.append(
                {
                    "run_id": run_id,
                    "status": STATUS_INTERRUPTED,
                    "created": _stamp(incomplete / run_id),
                }
            )
    return rows


# -- how runs differ ---------------------------------------------------------------------------------


def _wide_parameters(table: RunsTable, run_ids: Sequence[str]) -> pd.DataFrame:
    missing = [r for r in run_ids if r not in set(table.parameters["run_id"])]
    if missing:
        raise ValueError(
            f"run_ids: {missing[0]!r} is not a complete run of {table.root or 'the runs table'}"
        )
    part = table.parameters[table.parameters["run_id"].isin(run_ids)]
    wide = part.pivot(index="parameter", columns="run_id", values="value")
    return wide.reindex(columns=list(run_ids)).fillna("(unset)")


def differing_parameters(
    table: RunsTable, run_ids: Sequence[str], *, include_seed: bool = True
) -> pd.DataFrame:
    """The parameters whose values differ between ``run_ids``: one row per parameter, one column per run.

    Parameters
    ----------
    table : RunsTable
        From :func:`runs_table`.
    run_ids : list of str
        Complete runs of the table (two or more to see a difference).
    include_seed : bool
        Keep the ``seed`` row when seeds differ.

    Returns
    -------
    DataFrame
        Index ``parameter`` (sorted, seed last), columns the run ids, values as text; ``(unset)``
        where a run has no such parameter. Empty when the runs share every setting.

    Examples
    --------
    >>> t = RunsTable(runs=pd.DataFrame(), parameters=pd.DataFrame({"run_id": ["a", "a", "b", "b"],
    ...     "parameter": ["lr", "seed", "lr", "seed"], "value": ["0.01", "0", "0.1", "0"]}))
    >>> differing_parameters(t, ["a", "b"]).loc["lr"].tolist()
    ['0.01', '0.1']
    """
    wide = _wide_parameters(table, run_ids)
    differ = wide.nunique(axis=1) > 1
    out = wide[differ]
    if not include_seed:
        out = out.drop(index="seed", errors="ignore")
    order = sorted(out.index, key=lambda p: (p == "seed", p))
    return out.loc[order].rename_axis(index="parameter", columns=None)


def configuration_labels(table: RunsTable, run_ids: Sequence[str]) -> dict[str, str]:
    """A readable name of each run's configuration: the parameters (but the seed) whose values differ
    among ``run_ids``, as ``name=value`` pairs; runs of one configuration share a name. When only seeds
    differ, every run gets ``dataset · strategy · fusion``.

    Examples
    --------
    >>> t = RunsTable(runs=pd.DataFrame({"run_id": ["a", "b"], "dataset": "d", "strategy": "naive", "fusion": "concat"}),
    ...     parameters=pd.DataFrame({"run_id": ["a", "a", "b", "b"], "parameter": ["lr", "seed", "lr", "seed"],
    ...                              "value": ["0.01", "0", "0.1", "1"]}))
    >>> configuration_labels(t, ["a", "b"])
    {'a': 'lr=0.01', 'b': 'lr=0.1'}
    """
    differ = differing_parameters(table, run_ids, include_seed=False)
    if differ.empty:
        info = table.runs.set_index("run_id")
        return {
            r: " · ".join(str(info.at[r, c]) for c in ("dataset", "strategy", "fusion"))
            for r in run_ids
        }
    return {r: ", ".join(f"{p}={differ.at[p, r]}" for p in differ.index) for r in run_ids}


def comparable_runs(table: RunsTable, *, limit: int = 12) -> list[str]:
    """A default selection for comparing runs, never two unrelated runs.

    The configuration with the most seeds (two or more), together with the other configurations
    of the same dataset that share at least two of its seeds (so paired differences exist); else
    the two complete runs of one dataset that differ in the fewest parameters; else the newest run.
    At most ``limit`` runs.

    Examples
    --------
    >>> comparable_runs(RunsTable(runs=pd.DataFrame(columns=RUN_COLUMNS), parameters=pd.DataFrame()))
    []
    """
    done = table.runs[table.runs["status"] == STATUS_COMPLETE]
    if done.empty:
        return []
    seeds = done.groupby("configuration")["seed"].agg(lambda s: set(s.dropna()))
    if seeds.map(len).max() >= 2:
        best = max(
            seeds.index,
            key=lambda c: (len(seeds[c]), -done.index[done["configuration"] == c].min()),
        )
        dataset = done.loc[done["configuration"] == best, "dataset"].iloc[0]
        keep = [
            c
            for c in seeds.index
            if c == best
            or (
                len(seeds[c] & seeds[best]) >= 2
                and (done.loc[done["configuration"] == c, "dataset"] == dataset).all()
            )
        ]
        chosen = done[done["configuration"].isin(keep)]
        return chosen.sort_values(["configuration", "seed"])["run_id"].tolist()[:limit]
    pairs = []
    for _, part in done.groupby("dataset"):
        ids = part["run_id"].tolist()
        for i, a in enumerate(ids):
            for b in ids[i + 1 :]:
                pairs.append((len(differing_parameters(table, [a, b])), a, b))
    if pairs:
        _, a, b = min(pairs)
        return [a, b]
    return done["run_id"].tolist()[:1]


# -- learning curves across seeds, and comparisons of any metric ---------------------------------------


def history_metrics(runs: Iterable[Run]) -> list[str]:
    """The numeric history columns (but ``epoch``) that any of ``runs`` recorded, in first-seen order."""
    names: dict[str, None] = {}
    for run in runs:
        for c in run.history.columns:
            if (
                c != "epoch"
                and pd.api.types.is_numeric_dtype(run.history[c])
                and not pd.api.types.is_bool_dtype(run.history[c])
            ):
                names[c] = None
    return list(names)


def seed_curves(
    runs: Sequence[Run],
    metric: str,
    *,
    labels: Mapping[str, str] | None = None,
    level: float = LEVEL,
) -> pd.DataFrame:
    """``metric`` (a history column) per epoch, mean over the seeds of each configuration with a t-interval.

    Parameters
    ----------
    runs : list of Run
        Loaded runs.
    metric : str
        A history column (:func:`history_metrics`).
    labels : dict, optional
        Run id -> configuration name (:func:`configuration_labels`); runs of one name are pooled.
        Default: one name per configuration key.
    level : float
        Confidence level of the interval (0.95 by default).

    Returns
    -------
    DataFrame
        ``configuration, epoch, n, seeds, mean, mean_ci_lower, mean_ci_upper`` (NaN bounds where fewer
        than two seeds reached the epoch or recorded the value there).

    Examples
    --------
    >>> h = lambda v: pd.DataFrame({"epoch": [1], "loss": [v]})
    >>> runs = [Run(f"r{s}", {"train": {"seed": s}}, h(v), pd.DataFrame(), {}) for s, v in enumerate([1.0, 2.0, 3.0])]
    >>> seed_curves(runs, "loss", labels=dict.fromkeys(["r0", "r1", "r2"], "c"))[["mean", "mean_ci_lower"]].round(4).values.tolist()
    [[2.0, -0.4841]]
    """
    level = check_level(level)
    if not runs:
        raise ValueError("runs: no runs to draw curves of")
    if metric not in history_metrics(runs):
        raise ValueError(
            f"metric {metric!r} is not a numeric history column of these runs; "
            f"available: {history_metrics(runs)}"
        )
    if labels is None:
        from workbench.jobs.sweep import configuration_key

        labels = {run.run_id: configuration_key(run.config) for run in runs}
    frames = [
        run.history[["epoch", metric]].assign(
            configuration=labels[run.run_id], seed=run.config.get("train", {}).get("seed")
        )
        for run in runs
        if metric in run.history
    ]
    long = pd.concat(frames, ignore_index=True).dropna(subset=[metric])
    rows = []
    for (name, epoch), part in long.groupby(["configuration", "epoch"], sort=True):
        mean, lo, hi = t_interval(part[metric].to_numpy(), level)
        rows.append(
            {
                "configuration": name,
                "epoch": int(epoch),
                "n": len(part),
                "seeds": ",".join(str(s) for s in sorted(part["seed"].dropna().unique())),
                "mean": float(mean),
                "mean_ci_lower": float(lo),
                "mean_ci_upper": float(hi),
            }
        )
    return pd.DataFrame(
        rows,
        columns=["configuration", "epoch", "n", "seeds", "mean", "mean_ci_lower", "mean_ci_upper"],
    )


def compare_runs(
    runs: Sequence[Run], labels: Mapping[str, str], *, level: float = LEVEL
) -> Comparison:
    """:func:`workbench.analyses.compare.compare` of ``runs``, with configurations named by ``labels``
    (run id -> name, e.g. :func:`configuration_labels`) and every numeric history column's last-epoch
    value as a metric too (``final_<column>``), beside the accuracies, worst-group accuracies and gap
    statistics that comparison already has.

    Examples
    --------
    >>> cmp = compare_runs(runs, configuration_labels(table, ids))     # doctest: +SKIP
    """
    level = check_level(level)
    frame = runs_frame(list(runs))
    extra = []
    for run in runs:
        if run.history.empty:
            continue
        last = run.history.iloc[-1]
        base = frame.loc[frame["run_id"] == run.run_id].iloc[0].drop(["metric", "value"]).to_dict()
        extra += [
            {**base, "metric": f"final_{c}", "value": float(last[c])}
            for c in history_metrics([run])
            if pd.notna(last[c])
        ]
    frame = pd.concat([frame, pd.DataFrame(extra)], ignore_index=True) if extra else frame
    frame["config"] = frame["run_id"].map(dict(labels))
    if frame["config"].isna().any():
        raise ValueError(
            f"labels: no name for run {frame.loc[frame['config'].isna(), 'run_id'].iloc[0]!r}"
        )
    # configurations are told apart by name here: a name shared by two configuration keys pools them
    frame["config_key"] = frame["config"]
    return Comparison(
        summary=summarize_runs(frame, level),
        paired=paired_differences(frame, None, level),
        runs=frame,
        sources=[run.run_id for run in runs],
        level=level,
    )
