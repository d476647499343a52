"""Fairness by group: per-group metrics, disparities and modality-by-group views, with bootstrap CIs.

What it computes (for every group attribute and, by default, every intersection of two):

* per group: ``n``, accuracy, balanced accuracy, selection rate, TPR/FPR (binary: of the
  positive class; multiclass: ``tpr_<c>``/``fpr_<c>`` one-vs-rest), AUC where both classes
  are present, expected calibration error (15 equal-width bins of the top-class confidence);
* disparities over the groups that can be estimated: demographic parity difference (largest
  between-group gap in selection rate; multiclass: the largest over classes), equalized-odds
  difference (max of the TPR gap and the FPR gap, as fairlearn's ``agg='worst_case'``),
  worst-group accuracy, the max-min accuracy and AUC gaps, and the equity-scaled AUC of
  Harvard-GF / MultiFair (Zubair et al., arXiv 2510.07328; Luo et al., arXiv 2306.09264)::

      ES-AUC = AUC / (1 + alpha * sum_g |AUC_g - AUC|),  alpha = 1,

  where groups whose AUC is undefined (one class only) are skipped;
* modality by group: per-group accuracy of each unimodal head (``pred_<m>``), mean
  true-class probability ``p_true_<m>``, the modality gap ``p_true_<m>`` minus the mean of
  the other modalities' ``p_true``, and, when a per-sample Shapley table
  (``sample, modality, value``) is given, the per-group mean Shapley value of each modality.

Bookkeeping is fairlearn's :class:`~fairlearn.metrics.MetricFrame`. Bootstrap: the samples
are resampled *within each group* (so every group keeps its size) ``n_boot`` times; all
replicates go through one MetricFrame with the replicate id as a ``control_feature``, which
gives per-group and overall estimates per replicate in one pass. ``value_ci_lower``/``value_ci_upper`` of per-group
metrics are the percentile interval (default 95%); for biased statistics such as ECE
(resampling inflates it) the interval can sit above the point estimate. The max-min
disparities are non-negative, so a percentile interval of their bootstrap cannot reach 0
(with equal groups it missed 0 in about half the simulations, issue 14 item 7); their
``value_ci_lower``/``value_ci_upper`` come instead from simultaneous max-t bootstrap intervals of the signed
pairwise differences (:func:`maxmin_interval`), each has a permutation ``p_value`` of
equal groups (:func:`disparity_pvalues`), and the signed differences themselves are in the
``pairwise`` table. A group with fewer than ``min_group_size`` samples (30) or
with only one class is *flagged* (column ``flag``) and left out of the disparities (listed in
``excluded``), never silently averaged in.

Group attributes are read from the predictions' ``group_<name>`` columns; they are never
model inputs (the trainer never feeds them to the model, and nothing here needs it).

Example
-------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> y = rng.integers(0, 2, 400); p1 = np.clip(y * 0.3 + rng.random(400) * 0.7, 0, 1)
>>> pred = pd.DataFrame({"sample": np.arange(400), "y": y, "pred": (p1 > 0.5).astype(int),
...                      "p_0": 1 - p1, "p_1": p1, "group_sex": rng.choice(["F", "M"], 400)})
>>> res = assess_fairness(pred, n_boot=20)
>>> sorted(res.by_group["group"].unique())
['F', 'M']
>>> bool(res.difference("accuracy", "sex") >= 0)
True
"""

from __future__ import annotations

import dataclasses
import itertools
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame

from workbench.stats.intervals import LEVEL, auc_score, check_level, rank_auc
from workbench.store.results import Result

INTERSECT_SEP = " & "
PAIRWISE_COLUMNS = ["attribute", "metric", "group", "reference", "value", "value_ci_lower", "value_ci_upper", "p_value"]
ECE_BINS = 15


# -- metric primitives (numpy, fast: they run once per group per bootstrap replicate) ---------------
def expected_calibration_error(y: np.ndarray, proba: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """Top-label ECE: ``sum_b (n_b/n) |acc_b - conf_b|`` over equal-width confidence bins."""
    if len(y) == 0:
        return float("nan")
    conf = proba.max(1)
    correct = (proba.argmax(1) == y).astype(float)
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    gap = np.abs(np.bincount(bins, correct, n_bins) - np.bincount(bins, conf, n_bins))
    return float(gap.sum() / count.sum())


def es_auc(y: np.ndarray, scores: np.ndarray, groups: np.ndarray, alpha: float = 1.0) -> float:
    """Equity-scaled AUC ``AUC / (1 + alpha * sum_g |AUC_g - AUC|)``; one-class groups are skipped.

    Example
    -------
    >>> es_auc(np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.2, 0.8]), np.array(["a", "a", "b", "b"]))
    1.0
    """
    overall = auc_score(y, scores)
    per = [auc_score(y[groups == g], scores[groups == g]) for g in pd.unique(groups)]
    return _es_auc(overall, np.array(per), alpha)


def _es_auc(overall: float, per_group: np.ndarray, alpha: float = 1.0) -> float:
    per_group = per_group[np.isfinite(per_group)]
    return float(overall / (1 + alpha * np.abs(per_group - overall).sum()))


# -- the result -------------------------------------------------------------------------------------
@dataclasses.dataclass
class FairnessResult(Result):
    """Per-group metrics, disparities and modality-by-group views with bootstrap intervals.

    Tables (tidy, one estimate per row with ``value``, ``value_ci_lower``, ``value_ci_upper``):

    by_group
        ``attribute, group, metric, value, value_ci_lower, value_ci_upper, n, flag`` (``flag`` empty when the group
        is estimable, else ``"n<30"`` or ``"one class"``).
    disparities
        ``attribute, metric, value, value_ci_lower, value_ci_upper, p_value, ci_method, n_groups, excluded``. For the
        max-min disparities and the worst-group accuracy ``value_ci_lower``/``value_ci_upper`` come from simultaneous
        max-t bootstrap intervals of the pairwise differences (:func:`maxmin_interval`), so they
        cover the true value also when it is 0; ``p_value`` is the permutation test of equal
        groups (:func:`disparity_pvalues`).
    overall
        ``metric, value, value_ci_lower, value_ci_upper`` over all samples.
    modality_by_group
        ``attribute, group, modality, metric, value, value_ci_lower, value_ci_upper, flag`` with metrics
        ``accuracy``, ``p_true``, ``gap`` and (given Shapley values) ``shapley``.
    params
        split, n_boot, n_perm, level, min_group_size, attributes, modalities, classes.
    pairwise
        ``attribute, metric, group, reference, value, value_ci_lower, value_ci_upper, p_value``: signed differences
        ``metric(group) - metric(reference)`` for every pair of estimable groups, with percentile
        bootstrap intervals and bootstrap p-values (:func:`_pairwise_rows`).

    Read it MetricFrame-style: :meth:`metric_by_group`, :meth:`difference`,
    :meth:`group_min`, :meth:`group_max`; it shows its panel in JupyterLab.
    """

    by_group: pd.DataFrame
    disparities: pd.DataFrame
    overall: pd.DataFrame
    modality_by_group: pd.DataFrame
    params: dict
    pairwise: pd.DataFrame = dataclasses.field(default_factory=lambda: pd.DataFrame(columns=PAIRWISE_COLUMNS))

    @classmethod
    def _legacy_columns(cls) -> dict[str, dict[str, str]]:
        """Results saved before the interval convention had ``lo``/``hi`` beside ``value``."""
        return {"*": {"lo": "value_ci_lower", "hi": "value_ci_upper"}}

    @classmethod
    def _legacy_fields(cls, fields: dict) -> dict:
        """``params["ci"]`` (before the convention) is ``params["level"]``."""
        params = dict(fields.get("params", {}))
        if "ci" in params and "level" not in params:
            params["level"] = params.pop("ci")
        return {**fields, "params": params}

    @property
    def attributes(self) -> list[str]:
        return list(self.params["attributes"])

    @property
    def metrics(self) -> list[str]:
        return list(dict.fromkeys(self.by_group["metric"]))

    def _attr(self, attribute: str | None) -> str:
        if attribute is None:
            return self.attributes[0]
        if attribute not in self.attributes:
            raise KeyError(f"no group attribute {attribute!r}; this result has {self.attributes}")
        return attribute

    def metric_by_group(self, metric: str = "accuracy", attribute: str | None = None) -> pd.DataFrame:
        """One row per group of ``attribute``: value, value_ci_lower, value_ci_upper, n, flag."""
        attribute = self._attr(attribute)
        if metric not in self.metrics:
            raise KeyError(f"no metric {metric!r}; this result has {self.metrics}")
        part = self.by_group[(self.by_group["attribute"] == attribute) & (self.by_group["metric"] == metric)]
        return part.set_index("group")[["value", "value_ci_lower", "value_ci_upper", "n", "flag"]]

    def _estimable(self, metric: str, attribute: str | None) -> pd.Series:
        frame = self.metric_by_group(metric, attribute)
        return frame.loc[frame["flag"] == "", "value"].dropna()

    def group_min(self, metric: str = "accuracy", attribute: str | None = None) -> float:
        """Smallest value over estimable groups (flagged groups are left out)."""
        return float(self._estimable(metric, attribute).min())

    def group_max(self, metric: str = "accuracy", attribute: str | None = None) -> float:
        """Largest value over estimable groups."""
        return float(self._estimable(metric, attribute).max())

    def difference(self, metric: str = "accuracy", attribute: str | None = None,
                   method: str = "between_groups") -> float:
        """Max-min gap between estimable groups, or (``to_overall``) the largest gap to overall."""
        vals = self._estimable(metric, attribute)
        if method == "between_groups":
            return float(vals.max() - vals.min())
        if method == "to_overall":
            overall = float(self.overall.set_index("metric").loc[metric, "value"])
            return float((vals - overall).abs().max())
        raise ValueError(f"method must be 'between_groups' or 'to_overall', got {method!r}")

    def disparity(self, metric: str, attribute: str | None = None) -> pd.Series:
        """A row of the disparities table (value, value_ci_lower, value_ci_upper, n_groups, excluded)."""
        attribute = self._attr(attribute)
        part = self.disparities[(self.disparities["attribute"] == attribute) & (self.disparities["metric"] == metric)]
        if part.empty:
            raise KeyError(f"no disparity {metric!r}; available: {sorted(self.disparities['metric'].unique())}")
        return part.iloc[0]

    def pairwise_differences(self, metric: str = "accuracy", attribute: str | None = None) -> pd.DataFrame:
        """Signed differences ``group - reference`` of ``metric`` with interval and p-value."""
        attribute = self._attr(attribute)
        part = self.pairwise[(self.pairwise["attribute"] == attribute) & (self.pairwise["metric"] == metric)]
        return part[["group", "reference", "value", "value_ci_lower", "value_ci_upper", "p_value"]].reset_index(drop=True)


# -- per-group metric vector ------------------------------------------------------------------------
@dataclasses.dataclass
class _Data:
    """Per-sample arrays the metric function indexes by position."""

    y: np.ndarray
    proba: np.ndarray
    pred: np.ndarray
    uni_pred: dict[str, np.ndarray]
    uni_ptrue: dict[str, np.ndarray]
    shapley: dict[str, np.ndarray]

    @property
    def n_classes(self) -> int:
        return self.proba.shape[1]

    @property
    def modalities(self) -> list[str]:
        return list(self.uni_pred)

    def group_metric_names(self) -> list[str]:
        names = ["n", "accuracy", "balanced_accuracy"]
        if self.n_classes == 2:
            names += ["selection_rate", "tpr", "fpr"]
        else:
            for c in range(self.n_classes):
                names += [f"selection_rate_{c}", f"tpr_{c}", f"fpr_{c}"]
        return names + ["auc", "ece"]

    def modality_metric_names(self) -> list[tuple[str, str]]:
        out = []
        for m in self.modalities:
            out += [(m, "accuracy"), (m, "p_true"), (m, "gap")]
            if m in self.shapley:
                out.append((m, "shapley"))
        return out

    def metrics(self, y: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """All group metrics then all modality metrics for the samples at ``pos``."""
        pred, proba = self.pred[pos], self.proba[pos]
        vals = [float(len(y)), _mean(pred == y), _balanced_accuracy(y, pred)]
        classes = [1] if self.n_classes == 2 else range(self.n_classes)
        for c in classes:
            vals += [_mean(pred == c), _mean(pred[y == c] == c), _mean(pred[y != c] == c)]
        vals += [auc_score(y, proba), expected_calibration_error(y, proba)]
        ptrue = {m: v[pos] for m, v in self.uni_ptrue.items()}
        for m, metric in self.modality_metric_names():
            if metric == "accuracy":
                vals.append(_mean(self.uni_pred[m][pos] == y))
            elif metric == "p_true":
                vals.append(_mean(ptrue[m]))
            elif metric == "gap":
                others = [ptrue[o] for o in ptrue if o != m]
                vals.append(_mean(ptrue[m] - np.mean(others, axis=0)) if others else float("nan"))
            else:
                vals.append(_nanmean(self.shapley[m][pos]))
        return np.array(vals, dtype=float)


def _mean(a: np.ndarray) -> float:
    return float(np.mean(a)) if len(a) else float("nan")


def _nanmean(a: np.ndarray) -> float:
    a = a[np.isfinite(a)]
    return float(a.mean()) if len(a) else float("nan")


def _balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    recalls = [np.mean(pred[y == c] == c) for c in np.unique(y)]
    return float(np.mean(recalls)) if recalls else float("nan")


# -- assessment -------------------------------------------------------------------------------------
def _prepare(predictions: pd.DataFrame, shapley: pd.DataFrame | None) -> _Data:
    missing = [c for c in ("y", "pred") if c not in predictions]
    if missing:
        raise ValueError(f"predictions lack column {missing[0]!r}; expected the frame of workbench.predict_frame")
    pcols = sorted((c for c in predictions if c.startswith("p_") and c[2:].isdigit()), key=lambda c: int(c[2:]))
    if not pcols:
        raise ValueError("predictions have no class-probability columns p_0, p_1, ...")
    mods = [c[len("pred_"):] for c in predictions if c.startswith("pred_")]
    shap = {}
    if shapley is not None:
        need = {"sample", "modality", "value"} - set(shapley.columns)
        if need:
            raise ValueError(f"shapley table lacks column(s) {sorted(need)}; expected sample, modality, value")
        if "sample" not in predictions:
            raise ValueError("predictions need a 'sample' column to join Shapley values")
        wide = shapley.pivot_table(index="sample", columns="modality", values="value", aggfunc="mean")
        unknown = set(wide.columns) - set(mods)
        if unknown:
            raise ValueError(f"shapley table names modalities {sorted(unknown)} not in the predictions ({mods})")
        wide = wide.reindex(predictions["sample"].to_numpy())
        shap = {m: wide[m].to_numpy(dtype=float) for m in wide.columns}
    return _Data(
        y=predictions["y"].to_numpy(dtype=int), proba=predictions[pcols].to_numpy(dtype=float),
        pred=predictions["pred"].to_numpy(dtype=int),
        uni_pred={m: predictions[f"pred_{m}"].to_numpy() for m in mods},
        uni_ptrue={m: predictions[f"p_true_{m}"].to_numpy(dtype=float) for m in mods if f"p_true_{m}" in predictions},
        shapley=shap,
    )


def _group_labels(predictions: pd.DataFrame, attributes: Sequence[str],
                  intersections: Sequence[tuple[str, str]]) -> dict[str, np.ndarray]:
    labels = {}
    for a in attributes:
        col = f"group_{a}"
        if col not in predictions:
            have = [c[6:] for c in predictions if c.startswith("group_")]
            raise ValueError(f"predictions have no group attribute {a!r} (column {col!r}); they have {have}")
        labels[a] = predictions[col].astype(str).to_numpy()
    for a, b in intersections:
        labels[f"{a}{INTERSECT_SEP}{b}"] = np.char.add(np.char.add(labels[a], INTERSECT_SEP), labels[b])
    return labels


def _resample_within(labels: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n) positions, resampled with replacement inside each group."""
    out = np.empty((n_boot, len(labels)), dtype=np.int64)
    for g in np.unique(labels):
        where = np.flatnonzero(labels == g)
        out[:, where] = where[rng.integers(0, len(where), (n_boot, len(where)))]
    return out


def _frame_metric(data: _Data):
    def all_metrics(y_true, pos):  # MetricFrame passes y_true and the positions as y_pred
        return data.metrics(np.asarray(y_true), np.asarray(pos))

    return all_metrics


def _run_metricframe(data: _Data, labels: np.ndarray, boot: np.ndarray):
    """Point estimates (by group, overall) and per-replicate arrays via MetricFrame."""
    fn = _frame_metric(data)
    n = len(labels)
    point = MetricFrame(metrics={"m": fn}, y_true=data.y, y_pred=np.arange(n), sensitive_features=labels)
    groups = list(point.by_group.index)
    point_by = np.stack([point.by_group["m"].loc[g] for g in groups])
    point_all = np.asarray(point.overall["m"])
    n_boot = len(boot)
    if n_boot == 0:
        return groups, point_by, point_all, None, None
    flat = boot.reshape(-1)
    rep = np.repeat(np.arange(n_boot), n)
    mf = MetricFrame(metrics={"m": fn}, y_true=data.y[flat], y_pred=flat,
                     sensitive_features=pd.Series(labels[flat], name="group"),
                     control_features=pd.Series(rep, name="replicate"))
    by = mf.by_group["m"]
    boot_by = np.stack([np.stack([by.loc[(r, g)] for g in groups]) for r in range(n_boot)])
    boot_all = np.stack([np.asarray(mf.overall["m"].loc[r]) for r in range(n_boot)])
    return groups, point_by, point_all, boot_by, boot_all


def _disparities(by: np.ndarray, overall: np.ndarray, names: list[str], keep: np.ndarray, n_classes: int) -> dict:
    """Disparity values from one (groups, metrics) array; ``keep`` selects estimable groups."""
    col = {k: by[keep, names.index(k)] for k in names}
    classes = [""] if n_classes == 2 else [f"_{c}" for c in range(n_classes)]
    gap = lambda v: float(np.nanmax(v) - np.nanmin(v)) if np.isfinite(v).any() else float("nan")  # noqa: E731
    dpd = max(gap(col[f"selection_rate{c}"]) for c in classes)
    eod = max(max(gap(col[f"tpr{c}"]), gap(col[f"fpr{c}"])) for c in classes)
    auc_all = overall[names.index("auc")]
    return {
        "demographic_parity_difference": dpd,
        "equalized_odds_difference": eod,
        "worst_group_accuracy": float(np.nanmin(col["accuracy"])) if keep.any() else float("nan"),
        "accuracy_gap": gap(col["accuracy"]),
        "auc_gap": gap(col["auc"]),
        "es_auc": _es_auc(auc_all, col["auc"]) if np.isfinite(auc_all) else float("nan"),
    }


PAIRWISE_SKIP = ("n", "ece")  # a size is no contrast; ECE's bootstrap is biased upward
MAXT, PERCENTILE = "max-t bootstrap", "percentile bootstrap"


def _disparity_intervals(point_by: np.ndarray, boot_by: np.ndarray | None, names: list[str], keep: np.ndarray,
                         n_classes: int, level: float, boot_es: np.ndarray | None) -> dict[str, tuple]:
    """``metric -> (lo, hi, method)`` for every disparity (see :func:`maxmin_interval`)."""
    metrics = ("demographic_parity_difference", "equalized_odds_difference", "worst_group_accuracy",
               "accuracy_gap", "auc_gap")
    if boot_by is None:
        out = {m: (np.nan, np.nan, "") for m in metrics}
        out["es_auc"] = (np.nan, np.nan, "")
        return out
    classes = [""] if n_classes == 2 else [f"_{c}" for c in range(n_classes)]
    point, boot = point_by[keep], boot_by[:, keep]

    def spread(cols: list[str]) -> tuple:
        j = [names.index(c) for c in cols]
        return (*maxmin_interval(point[:, j], boot[:, :, j], level), MAXT)

    acc = names.index("accuracy")
    es_lo, es_hi = _interval(boot_es, level)
    return {
        "demographic_parity_difference": spread([f"selection_rate{c}" for c in classes]),
        "equalized_odds_difference": spread([f"{r}{c}" for c in classes for r in ("tpr", "fpr")]),
        "worst_group_accuracy": (*min_interval(point[:, acc], boot[:, :, acc], level), MAXT),
        "accuracy_gap": spread(["accuracy"]),
        "auc_gap": spread(["auc"]),
        # ES-AUC is a smooth function of the group AUCs only away from equal groups (|.| in its
        # denominator), so its percentile interval is approximate, and labelled so.
        "es_auc": (float(es_lo), float(es_hi), PERCENTILE + " (approximate)"),
    }


def _pairwise_rows(attribute: str, groups: list, point_by: np.ndarray, boot_by: np.ndarray | None,
                   names: list[str], keep: np.ndarray, level: float) -> list[tuple]:
    """Signed differences ``group - reference`` for every pair of estimable groups (in the
    groups' order, so the reference is the later one) with percentile bootstrap intervals and
    the bootstrap p-value ``min(1, 2 min(P*(d* <= 0), P*(d* >= 0)))`` of no difference (the one
    that inverts the percentile interval: ``p < 1 - level`` exactly when it excludes 0)."""
    est = [i for i in range(len(groups)) if keep[i]]
    metrics = [(j, m) for j, m in enumerate(names) if m not in PAIRWISE_SKIP]
    rows = []
    for a, b in itertools.combinations(est, 2):
        for j, metric in metrics:
            value = point_by[a, j] - point_by[b, j]
            lo = hi = p = np.nan
            if boot_by is not None and np.isfinite(value):
                d = boot_by[:, a, j] - boot_by[:, b, j]
                d = d[np.isfinite(d)]
                if len(d):
                    lo, hi = _interval(d, level)
                    p = min(1.0, 2 * min(np.mean(d <= 0), np.mean(d >= 0)))
            rows.append((attribute, metric, groups[a], groups[b], value, float(lo), float(hi), float(p)))
    return rows


def _interval(samples: np.ndarray | None, level: float) -> tuple:
    if samples is None:
        return np.nan, np.nan
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    with warnings.catch_warnings():  # all-NaN columns (e.g. AUC of a one-class group) stay NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        finite = np.isfinite(samples)
        lo, hi = np.nanpercentile(np.where(finite, samples, np.nan), q, axis=0) if finite.any() else (np.nan, np.nan)
    return lo, hi


# -- intervals and tests for disparities ------------------------------------------------------------
def simultaneous_intervals(point: np.ndarray, boot: np.ndarray, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """Simultaneous bootstrap intervals ``point_j +- c * se_j`` for a family of estimates.

    ``se_j`` is the bootstrap standard deviation of column ``j`` of ``boot`` (B, J) and ``c``
    the ``level`` quantile of the bootstrap max-|t| statistic ``max_j |boot_bj - point_j| / se_j``
    (the max-t construction of Romano & Wolf 2005, *Exact and approximate stepdown methods for
    multiple hypothesis testing*, JASA 100:94-108), so that all intervals of the family cover
    together with probability ``level``. With one estimate ``c`` is about 1.96 and the interval is
    the normal-bootstrap one. Columns whose bootstrap spread is zero (a rate of 0 or 1 in every
    replicate) get the degenerate interval ``[point, point]``; NaN estimates stay NaN.
    """
    point = np.asarray(point, dtype=float)
    boot = np.asarray(boot, dtype=float).reshape(len(boot), -1)
    point = point.reshape(-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        se = np.nanstd(boot, axis=0, ddof=1) if len(boot) > 1 else np.full(point.shape, np.nan)
        live = np.isfinite(point) & np.isfinite(se) & (se > 0)
        if live.any():
            t = np.nanmax(np.abs(boot[:, live] - point[live]) / se[live], axis=1)
            c = float(np.nanquantile(t[np.isfinite(t)], level)) if np.isfinite(t).any() else np.nan
        else:
            c = 0.0
    half = np.where(live, c * np.nan_to_num(se), 0.0)
    return point - half, point + half


def maxmin_interval(point: np.ndarray, boot: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """Interval for ``max_k (max_g m_gk - min_g m_gk)`` that covers its true value, also 0.

    ``point`` (G, K) holds the metric of each group (rows) and component (columns; e.g. TPR and
    FPR for the equalized-odds difference), ``boot`` (B, G, K) its bootstrap replicates. The
    disparity is the largest signed difference ``m_gk - m_hk`` over ordered pairs of groups and
    components. Given simultaneous intervals ``[l_j, u_j]`` of all pairwise differences
    (:func:`simultaneous_intervals`), whenever they all cover, ``max_j l_j <= theta <= max_j u_j``
    (ordered pairs: ``[-u_j, -l_j]`` for the reversed difference). So the interval
    ``[max(0, max_j l_j, -min_j u_j), max_j max(u_j, -l_j)]`` covers with at least ``level``; it
    contains 0 exactly when every pairwise interval does. Why not the percentile interval of
    the bootstrapped max-min: that statistic is non-negative and biased upward, so with equal
    groups its percentile interval excludes 0 about half the time (issue 14, item 7). For
    two groups this is the normal-bootstrap interval of the signed difference, folded; for
    more groups it is conservative where only some groups differ.
    """
    point = np.asarray(point, dtype=float)
    boot = np.asarray(boot, dtype=float)
    keep = np.isfinite(point).all(axis=1)
    point, boot = point[keep], boot[:, keep]
    if len(point) < 2:
        return float("nan"), float("nan")
    g, h = np.triu_indices(len(point), 1)
    lo, hi = simultaneous_intervals(point[g] - point[h], boot[:, g] - boot[:, h], level)
    lower = max(0.0, float(np.max(lo)), float(-np.min(hi)))
    upper = max(float(np.max(hi)), float(-np.min(lo)))
    return lower, upper


def min_interval(point: np.ndarray, boot: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """Interval for ``min_g m_g`` (worst group) from simultaneous intervals of the ``m_g``:
    ``[min_g l_g, min_g u_g]`` covers whenever all of them do. The percentile interval of the
    bootstrapped minimum is biased low when groups are close, this one is not."""
    point = np.asarray(point, dtype=float).reshape(-1)
    boot = np.asarray(boot, dtype=float).reshape(len(boot), -1)
    keep = np.isfinite(point)
    if not keep.any():
        return float("nan"), float("nan")
    lo, hi = simultaneous_intervals(point[keep], boot[:, keep], level)
    return float(np.min(lo)), float(np.min(hi))


def permute_within(codes: np.ndarray, n_perm: int, rng: np.random.Generator,
                   strata: np.ndarray | None = None) -> np.ndarray:
    """(n_perm, n) random permutations of the group codes, within each stratum if given."""
    codes = np.asarray(codes)
    out = np.broadcast_to(codes, (n_perm, len(codes))).copy()
    for s in [None] if strata is None else np.unique(strata):
        where = slice(None) if s is None else np.flatnonzero(strata == s)
        out[:, where] = rng.permuted(out[:, where], axis=1)
    return out


def group_rates(values: np.ndarray, codes: np.ndarray, n_groups: int,
                within: np.ndarray | None = None) -> np.ndarray:
    """Mean of each column of ``values`` (n, K) per group, for every row of ``codes`` (P, n).

    ``within`` (n,) bool restricts the means to some samples (e.g. ``y == 1`` for a TPR).
    Returns (P, G, K); NaN for a group with no sample. One ``bincount`` per column, so
    thousands of permutations cost a few milliseconds.
    """
    values = np.asarray(values, dtype=float)
    values = values[:, None] if values.ndim == 1 else values
    codes = np.atleast_2d(codes)
    if within is not None:
        values, codes = values[within], codes[:, within]
    p, n = codes.shape
    flat = (codes + n_groups * np.arange(p)[:, None]).ravel()
    count = np.bincount(flat, minlength=p * n_groups).reshape(p, n_groups)
    out = np.empty((p, n_groups, values.shape[1]))
    with np.errstate(invalid="ignore", divide="ignore"):
        for k in range(values.shape[1]):
            s = np.bincount(flat, np.broadcast_to(values[:, k], (p, n)).ravel(), p * n_groups)
            out[:, :, k] = s.reshape(p, n_groups) / count
    return out


def group_aucs(y: np.ndarray, proba: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """AUC (macro one-vs-rest over classes present; binary: of class 1) of each group for every
    row of ``codes`` (P, n), shape (P, G). Rows must keep each group's class counts (permutations
    within ``y``), which lets every group's scores be gathered into a (P, n_g) block."""
    codes = np.atleast_2d(codes)
    classes = [1] if proba.shape[1] == 2 else list(range(proba.shape[1]))
    out = np.full((len(codes), n_groups), np.nan)
    for g in range(n_groups):
        in_g = codes == g
        per = []
        for c in classes:
            pos, neg = in_g & (y == c), in_g & (y != c)
            n_pos, n_neg = int(pos[0].sum()), int(neg[0].sum())
            if n_pos == 0 or n_neg == 0:
                continue
            s = np.broadcast_to(proba[:, c], codes.shape)
            per.append(rank_auc(s[pos].reshape(-1, n_pos), s[neg].reshape(-1, n_neg)))
        if per:
            out[:, g] = np.mean(per, axis=0)
    return out


def _spread(rates: np.ndarray) -> np.ndarray:
    """max over components of (max_g - min_g); rates (P, G, K) -> (P,)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmax(np.nanmax(rates, axis=1) - np.nanmin(rates, axis=1), axis=1)


def permutation_pvalue(observed: float, permuted: np.ndarray) -> float:
    """``(1 + #{T* >= T}) / (1 + P)``: the permutation p-value, valid in finite samples
    (Phipson & Smyth 2010, *Permutation p-values should never be zero*, SAGMB 9:39)."""
    permuted = np.asarray(permuted, dtype=float)
    if not np.isfinite(observed):
        return float("nan")
    return float((1 + np.sum(permuted >= observed - 1e-12)) / (1 + len(permuted)))


def disparity_pvalues(y: np.ndarray, pred: np.ndarray, proba: np.ndarray, labels: np.ndarray,
                      n_perm: int, rng: np.random.Generator) -> dict[str, float]:
    """Permutation tests of equality for the max-min disparities over the groups in ``labels``.

    Nulls (each exact under group-label exchangeability):

    * ``accuracy_gap``: correctness independent of group (group labels permuted freely);
    * ``demographic_parity_difference``: prediction independent of group (permuted freely);
    * ``equalized_odds_difference`` and ``auc_gap``: prediction / scores independent of group
      given ``y`` (labels permuted within each class). For binary tasks this is exactly equal
      TPR and FPR (resp. equal score distributions, hence AUC); for multiclass tasks it is the
      stronger conditional independence, stated here because one-vs-rest FPRs also depend on
      each group's class mix.
    """
    groups, codes = np.unique(labels, return_inverse=True)
    n_groups = len(groups)
    if n_groups < 2 or n_perm <= 0:
        return dict.fromkeys(("demographic_parity_difference", "equalized_odds_difference", "accuracy_gap",
                              "auc_gap"), float("nan"))
    classes = [1] if proba.shape[1] == 2 else list(range(proba.shape[1]))
    sel = np.stack([pred == c for c in classes], axis=1)
    free = np.vstack([codes, permute_within(codes, n_perm, rng)])
    strat = np.vstack([codes, permute_within(codes, n_perm, rng, strata=y)])
    acc = _spread(group_rates(pred == y, free, n_groups))
    dpd = _spread(group_rates(sel, free, n_groups))
    eod = np.max([_spread(group_rates(sel[:, [i]], strat, n_groups, within=w))
                  for i, c in enumerate(classes) for w in (y == c, y != c)], axis=0)
    auc = _spread(group_aucs(y, proba, strat, n_groups)[:, :, None])
    return {name: permutation_pvalue(t[0], t[1:]) for name, t in
            (("demographic_parity_difference", dpd), ("equalized_odds_difference", eod),
             ("accuracy_gap", acc), ("auc_gap", auc))}


def _flag(y_group: np.ndarray, min_group_size: int) -> str:
    if len(y_group) < min_group_size:
        return f"n<{min_group_size}"
    if len(np.unique(y_group)) < 2:
        return "one class"
    return ""


def assess_fairness(
    predictions: pd.DataFrame,
    groups: str | Sequence[str] | None = None,
    *,
    split: str | None = "test",
    intersections: Sequence[tuple[str, str]] | str | None = "pairs",
    shapley: pd.DataFrame | None = None,
    n_boot: int = 200,
    n_perm: int = 1000,
    level: float = LEVEL,
    min_group_size: int = 30,
    seed: int = 0,
    progress: bool = False,
) -> FairnessResult:
    """Fairness of a model's predictions by group, with bootstrap intervals.

    Parameters
    ----------
    predictions : DataFrame
        Per-sample predictions (:func:`workbench.predict_frame` / ``run.predictions``): ``y``,
        ``pred``, ``p_<c>``, ``pred_<m>``, ``p_true_<m>``, ``group_<attribute>``.
    groups : str or list of str, optional
        Group attributes (without the ``group_`` prefix); default all ``group_*`` columns.
    split : str or None
        Keep only rows of this split (when a ``split`` column exists); None keeps all.
    intersections : "pairs", list of (a, b) or None
        Intersections of two attributes to add (``"pairs"``: every pair of ``groups``).
    shapley : DataFrame, optional
        Per-sample Shapley values ``sample, modality, value`` aggregated by group.
    n_boot : int
        Bootstrap replicates (resampled within each group); 0 gives no intervals.
    n_perm : int
        Permutations of the group labels for the equality tests of the max-min disparities
        (``p_value``); 0 skips them.
    level : float
        Coverage of the intervals (percentile for per-group metrics and pairwise differences,
        simultaneous max-t for the disparities).
    min_group_size : int
        Groups smaller than this (or with one class) are flagged and left out of disparities.
    seed : int
    progress : bool
        Show a progress bar over attributes.

    Returns
    -------
    FairnessResult

    Example
    -------
    >>> from workbench import train  # doctest: +SKIP
    >>> run = train("synthetic-group-noise", epochs=10)  # doctest: +SKIP
    >>> assess_fairness(run.predictions).disparity("worst_group_accuracy", "group")  # doctest: +SKIP
    """
    level = check_level(level)
    frame = predictions
    if split is not None and "split" in frame:
        frame = frame[frame["split"] == split]
        if frame.empty:
            raise ValueError(f"predictions have no rows in split {split!r}")
    frame = frame.reset_index(drop=True)
    attrs = [groups] if isinstance(groups, str) else list(groups or [c[6:] for c in frame if c.startswith("group_")])
    if not attrs:
        raise ValueError("predictions have no group_<attribute> columns; the dataset has no groups to assess")
    pairs = list(itertools.combinations(attrs, 2)) if intersections == "pairs" else list(intersections or [])
    data = _prepare(frame, shapley)
    labels = _group_labels(frame, attrs, pairs)
    rng = np.random.default_rng(seed)
    perm_rng = np.random.default_rng([seed, 1])  # its own stream: the bootstrap draws stay as before
    names = data.group_metric_names()
    mod_names = data.modality_metric_names()
    rows, drows, mrows, prows, overall_rows = [], [], [], [], None
    from tqdm.auto import tqdm

    for attribute, lab in tqdm(labels.items(), disable=not progress, desc="fairness"):
        boot = _resample_within(lab, n_boot, rng)
        groups_, point_by, point_all, boot_by, boot_all = _run_metricframe(data, lab, boot)
        lo_by, hi_by = _interval(boot_by, level)
        flags = [_flag(data.y[lab == g], min_group_size) for g in groups_]
        keep = np.array([f == "" for f in flags])
        k = len(names)
        for gi, g in enumerate(groups_):
            n_g = int(point_by[gi, 0])
            for j, metric in enumerate(names):
                rows.append((attribute, g, metric, point_by[gi, j], _at(lo_by, gi, j), _at(hi_by, gi, j), n_g, flags[gi]))
            for j, (m, metric) in enumerate(mod_names):
                mrows.append((attribute, g, m, metric, point_by[gi, k + j], _at(lo_by, gi, k + j),
                              _at(hi_by, gi, k + j), flags[gi]))
        point_d = _disparities(point_by, point_all, names, keep, data.n_classes)
        boot_es = None if boot_by is None else np.array(
            [_disparities(b, a, names, keep, data.n_classes)["es_auc"] for b, a in zip(boot_by, boot_all, strict=True)])
        intervals = _disparity_intervals(point_by, boot_by, names, keep, data.n_classes, level, boot_es)
        in_kept = np.isin(lab, [g for g, k in zip(groups_, keep, strict=True) if k])
        pvals = disparity_pvalues(data.y[in_kept], data.pred[in_kept], data.proba[in_kept], lab[in_kept],
                                  n_perm, perm_rng)
        excluded = ", ".join(g for g, f in zip(groups_, flags, strict=True) if f)
        for metric, value in point_d.items():
            lo, hi, how = intervals[metric]
            drows.append((attribute, metric, value, lo, hi, pvals.get(metric, np.nan), how, int(keep.sum()), excluded))
        prows += _pairwise_rows(attribute, groups_, point_by, boot_by, names, keep, level)
        if overall_rows is None:
            lo_a, hi_a = _interval(boot_all, level)
            overall_rows = [(metric, point_all[j], _at(lo_a, j), _at(hi_a, j)) for j, metric in enumerate(names)]
    return FairnessResult(
        by_group=pd.DataFrame(rows, columns=["attribute", "group", "metric", "value", "value_ci_lower", "value_ci_upper", "n",
                                             "flag"]),
        disparities=pd.DataFrame(drows, columns=["attribute", "metric", "value", "value_ci_lower", "value_ci_upper",
                                                 "p_value", "ci_method",
                                                 "n_groups", "excluded"]),
        overall=pd.DataFrame(overall_rows, columns=["metric", "value", "value_ci_lower", "value_ci_upper"]),
        modality_by_group=pd.DataFrame(mrows, columns=["attribute", "group", "modality", "metric", "value", "value_ci_lower",
                                                       "value_ci_upper", "flag"]),
        pairwise=pd.DataFrame(prows, columns=PAIRWISE_COLUMNS),
        params={"split": split, "n_boot": n_boot, "n_perm": n_perm, "level": level, "min_group_size": min_group_size, "seed": seed,
                "attributes": list(labels), "modalities": data.modalities, "n_classes": data.n_classes,
                "n_samples": len(frame), "shapley": bool(data.shapley)},
    )


def _at(arr, *index) -> float:
    if np.ndim(arr) == 0:
        return float("nan")
    return float(arr[index])


def assess_run(run, groups: str | Sequence[str] | None = None, **kwargs) -> FairnessResult:
    """:func:`assess_fairness` on a run's test predictions.

    Example
    -------
    >>> res = assess_run(run, "group", n_boot=100)  # doctest: +SKIP
    """
    return assess_fairness(run.predictions, groups, **kwargs)


def demo_analysis(run) -> tuple[str, FairnessResult]:
    """``("fairness", result)`` for a run whose dataset has group attributes.

    Not listed in ``workbench.jobs.demo.DEMO_ANALYSES``: the demo trains on mfeat, which has no
    groups, so there is nothing to assess; call it on any run with groups instead.
    """
    if not any(c.startswith("group_") for c in run.predictions.columns):
        raise ValueError(f"run {run.run_id}: its dataset has no group attributes; fairness needs groups")
    return "fairness", assess_run(run, n_boot=100)
