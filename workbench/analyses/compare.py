"""Compare runs grouped by configuration across seeds: mean, spread and paired differences.

A *configuration* is everything in a run's config except the seed (dataset and its
parameters, strategy and its parameters, fusion, epochs, every other training setting), so
the runs of one configuration are replicates over seeds. Per configuration and metric:

- mean, sample sd (ddof=1), ``n`` and a t-interval at ``level`` (0.95 by default),
  ``mean +- t_{(1 + level)/2, n-1} * sd / sqrt(n)`` (:func:`workbench.stats.intervals.t_interval`;
  no interval when n < 2), in columns ``mean``, ``mean_ci_lower``, ``mean_ci_upper``;
- paired differences between two configurations of the same dataset on the seeds both have:
  ``d_s = metric_B(s) - metric_A(s)``, mean, sd, the same t-interval on ``d``
  (``mean_diff``, ``mean_diff_ci_lower``, ``mean_diff_ci_upper``) and the paired
  t-test p-value (``scipy.stats.ttest_rel``). Seeds fix the data split and the initialisation,
  so pairing removes the split-to-split variance that dominates small test sets.

Metrics per run (test split): ``acc_fused`` and ``acc_<modality>`` (from ``metrics.json``);
``worst_group_acc_<attribute>`` -- the lowest per-group accuracy of the fused model, for
every group attribute the dataset has (a pandas group-by of the test predictions; fairlearn's
``MetricFrame.group_min`` gives the same number but costs seconds to import in the CLI);
and gap statistics if present: numeric columns of the last history row whose name contains
``gap`` (written there by balancing strategies).

Example
-------
>>> from workbench.analyses.compare import compare      # doctest: +SKIP
>>> cmp = compare(["sweep-5bb864c8a5"], runs_dir="runs")                      # doctest: +SKIP
>>> cmp.summary.query("metric == 'acc_fused'")[["config", "n", "mean", "mean_ci_lower", "mean_ci_upper"]]  # doctest: +SKIP
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from workbench.stats.intervals import LEVEL, check_level, t_interval
from workbench.store.results import Result
from workbench.store.runs import Run, RunError

CONFIG_COLUMNS = ["config", "dataset", "strategy", "fusion", "epochs"]


@dataclass
class Comparison(Result):
    """Per-run metrics, per-configuration summaries and paired differences."""

    summary: pd.DataFrame
    paired: pd.DataFrame
    runs: pd.DataFrame
    sources: list = field(default_factory=list)
    level: float = LEVEL

    @classmethod
    def _legacy_columns(cls) -> dict[str, dict[str, str]]:
        """Comparisons saved before the interval convention had ``ci_low``/``ci_high``."""
        return {"summary": {"ci_low": "mean_ci_lower", "ci_high": "mean_ci_upper"},
                "paired": {"ci_low": "mean_diff_ci_lower", "ci_high": "mean_diff_ci_upper"}}

    def metrics(self) -> list[str]:
        return list(dict.fromkeys(self.summary["metric"]))


# -- per-run metrics -------------------------------------------------------------------------------

def config_key(config: dict) -> str:
    """A short hash of a run's configuration across seeds: its dataset and the settings that
    change results (:func:`workbench.training.config.config_key`, the rule of the run id) but
    the seed (:func:`workbench.jobs.sweep.configuration_key`, shared with the MLflow export)."""
    from workbench.jobs.sweep import configuration_key

    return configuration_key(config)


def worst_group_accuracy(predictions: pd.DataFrame, split: str = "test") -> dict[str, float]:
    """Lowest per-group accuracy of the fused prediction for each ``group_<attr>`` column."""
    if not {"pred", "y"} <= set(predictions.columns):  # no class predictions (alignment, ranking)
        return {}
    part = predictions[predictions["split"] == split]
    correct = part["pred"] == part["y"]
    return {f"worst_group_acc_{c.removeprefix('group_')}": float(correct.groupby(part[c]).mean().min())
            for c in part.columns if c.startswith("group_")}


def gap_statistics(history: pd.DataFrame) -> dict[str, float]:
    """Numeric ``*gap*`` columns of the last epoch, if a strategy recorded any."""
    if history.empty:
        return {}
    last = history.iloc[-1]
    return {c: float(last[c]) for c in history.columns
            if "gap" in c and pd.api.types.is_numeric_dtype(history[c])}


def run_metrics(run: Run, split: str = "test") -> dict[str, float]:
    """Every metric of one run that :func:`compare` summarises: a classification run's accuracies as
    ``acc_<model>``, another task's metrics under their own names (``r1_1to1``, ``A/transductive/ndcg@20``)."""
    prefix = "acc_" if run.config.get("train", {}).get("task", "classification") == "classification" else ""
    out = {f"{prefix}{k}": float(v) for k, v in run.metrics.get(split, {}).items()
           if k != "n" and not str(k).endswith("/n")}
    out.update(worst_group_accuracy(run.predictions, split))
    out.update(gap_statistics(run.history))
    return out


def runs_frame(runs: list[Run]) -> pd.DataFrame:
    """Long table: one row per run and metric, with the configuration columns and the seed."""
    rows = []
    for run in runs:
        cfg, train = run.config, run.config["train"]
        base = {"config_key": config_key(cfg), "dataset": cfg.get("dataset"), "strategy": train["strategy"],
                "fusion": train["fusion"], "epochs": train["epochs"], "seed": train["seed"], "run_id": run.run_id}
        rows += [{**base, "metric": m, "value": v} for m, v in run_metrics(run).items()]
    frame = pd.DataFrame(rows)
    if frame.empty:
        raise RunError("no complete runs to compare")
    return frame.assign(config=_labels(frame))


def _labels(frame: pd.DataFrame) -> pd.Series:
    """Readable configuration names; a config hash is appended only where two would collide."""
    keys = frame.drop_duplicates("config_key")
    short = keys["dataset"] + " | " + keys["strategy"] + " | " + keys["fusion"] + " | " + keys["epochs"].astype(str) + " ep"
    clash = short.duplicated(keep=False)
    names = dict(zip(keys["config_key"], short.where(~clash, short + " #" + keys["config_key"]), strict=True))
    return frame["config_key"].map(names)


# -- statistics ------------------------------------------------------------------------------------

def _mean_sd_interval(values: np.ndarray, level: float) -> tuple[float, float, float, float]:
    """``(mean, sd, ci_lower, ci_upper)``: sample sd (NaN when n < 2) and the Student-t interval."""
    values = np.asarray(values, dtype=float)
    sd = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
    mean, lo, hi = t_interval(values, level)
    return mean, sd, lo, hi


def summarize_runs(runs: pd.DataFrame, level: float = LEVEL) -> pd.DataFrame:
    """Mean, sd, n and t-interval (``mean_ci_lower``, ``mean_ci_upper``) per configuration and metric.

    Examples
    --------
    >>> runs = pd.DataFrame({"config_key": "k", "config": "a", "dataset": "d", "strategy": "s", "fusion": "f",
    ...                      "epochs": 1, "metric": "acc", "seed": [0, 1, 2], "value": [1.0, 2.0, 3.0]})
    >>> summarize_runs(runs)[["mean", "mean_ci_lower", "mean_ci_upper"]].round(4).values.tolist()
    [[2.0, -0.4841, 4.4841]]
    """
    rows = []
    for (key, metric), part in runs.groupby(["config_key", "metric"], sort=False):
        mean, sd, lo, hi = _mean_sd_interval(part["value"].to_numpy(), level)
        first = part.iloc[0]
        rows.append({**{c: first[c] for c in CONFIG_COLUMNS}, "config_key": key, "metric": metric,
                     "n": len(part), "seeds": ",".join(map(str, sorted(part["seed"]))),
                     "mean": mean, "sd": sd, "mean_ci_lower": lo, "mean_ci_upper": hi})
    return pd.DataFrame(rows)


def paired_differences(runs: pd.DataFrame, baseline: str | None = None, level: float = LEVEL) -> pd.DataFrame:
    """``B - A`` per metric on shared seeds, for pairs of configurations of the same dataset.

    ``baseline`` (a strategy name or a configuration label) keeps only pairs against it, with
    the baseline as A; otherwise every pair (A before B in label order).
    """
    rows = []
    for _, data in runs.groupby("dataset", sort=False):
        configs = sorted(data["config"].unique())
        for a, b in itertools.combinations(configs, 2):
            a, b = _orient(a, b, data, baseline)
            if a is None:
                continue
            rows += _pair_rows(data, a, b, level)
    columns = ["dataset", "config_a", "config_b", "metric", "n", "seeds", "mean_diff", "sd_diff",
               "mean_diff_ci_lower", "mean_diff_ci_upper", "p_value"]
    return pd.DataFrame(rows, columns=columns)


def _orient(a: str, b: str, data: pd.DataFrame, baseline: str | None) -> tuple[str | None, str | None]:
    if baseline is None:
        return a, b
    is_base = {c: c == baseline or (data.loc[data["config"] == c, "strategy"] == baseline).any() for c in (a, b)}
    if is_base[a] == is_base[b]:
        return None, None
    return (a, b) if is_base[a] else (b, a)


def _pair_rows(data: pd.DataFrame, a: str, b: str, level: float) -> list[dict]:
    wide = data[data["config"].isin([a, b])].pivot_table(index=["metric", "seed"], columns="config", values="value")
    rows = []
    for metric, part in wide.dropna().groupby(level="metric", sort=False):
        diff = np.round((part[b] - part[a]).to_numpy(), 12)  # equal accuracies must differ by exactly 0
        mean, sd, lo, hi = _mean_sd_interval(diff, level)
        p = float(stats.ttest_rel(part[b], part[a]).pvalue) if len(diff) > 1 and sd > 0 else float("nan")
        seeds = ",".join(str(s) for s in part.index.get_level_values("seed"))
        rows.append({"dataset": data["dataset"].iloc[0], "config_a": a, "config_b": b, "metric": metric,
                     "n": len(diff), "seeds": seeds, "mean_diff": mean, "sd_diff": sd,
                     "mean_diff_ci_lower": lo, "mean_diff_ci_upper": hi,
                     "p_value": p})
    return rows


# -- entry point -----------------------------------------------------------------------------------

def resolve_runs(sources: list[str], runs_dir: str | Path | None = None) -> list[Run]:
    """Complete runs named by run id, run folder, sweep id (``sweep-...``) or ``all``
    (:func:`workbench.jobs.sweep.resolve_runs`)."""
    from workbench.jobs.sweep import resolve_runs as resolve

    return resolve(sources, runs_dir)


def compare(sources: list[str] | list[Run], *, runs_dir: str | Path | None = None, baseline: str | None = None,
            level: float = LEVEL) -> Comparison:
    """Group runs by configuration across seeds and compare configurations on shared seeds.

    Parameters
    ----------
    sources : list of str or Run
        Run ids, run folders, sweep ids, ``"all"``, or loaded runs.
    runs_dir : path, optional
        Run store root.
    baseline : str, optional
        A strategy name or configuration label: paired differences only against it.
    level : float
        Confidence level of the t-intervals.

    Returns
    -------
    Comparison
        ``summary`` (config x metric: n, mean, sd, mean_ci_lower, mean_ci_upper), ``paired``
        (config_b - config_a per metric on shared seeds: mean_diff, sd_diff, mean_diff_ci_lower,
        mean_diff_ci_upper, p_value) and ``runs``.

    Examples
    --------
    >>> cmp = compare(["sweep-5bb864c8a5"], runs_dir="runs", baseline="naive")   # doctest: +SKIP
    """
    level = check_level(level)
    runs = [s for s in sources if isinstance(s, Run)]
    names = [s for s in sources if not isinstance(s, Run)]
    runs += resolve_runs(names, runs_dir) if names else []
    frame = runs_frame(runs)
    return Comparison(summary=summarize_runs(frame, level), paired=paired_differences(frame, baseline, level),
                      runs=frame, sources=[str(s) if not isinstance(s, Run) else s.run_id for s in sources],
                      level=level)
