"""Confidence intervals and the exact AUC shared by every analysis (numpy/scipy only).

One convention for the whole workbench: an estimate ``x`` is reported with
``x_ci_lower`` and ``x_ci_upper`` at ``level`` (0.95 by default). The intervals are
scipy's, not hand-written: Student-t from :func:`scipy.stats.ttest_1samp`'s
``confidence_interval`` and Wilson score intervals from :func:`scipy.stats.binomtest`'s
``proportion_ci(method="wilson")``.

The AUC is the exact Mann-Whitney statistic with mid-ranks (ties count 1/2), equal to
scikit-learn's ``roc_auc_score`` where that is defined; unlike it, it returns NaN instead of
raising when a class is missing (per-group and bootstrap AUCs meet such groups), averages
one-vs-rest over the classes present, and is batched over leading axes (permutation tests).

Examples
--------
>>> import numpy as np
>>> mean, lo, hi = t_interval(np.array([1.0, 2.0, 3.0]))
>>> round(mean, 3), round(lo, 3), round(hi, 3)
(2.0, -0.484, 4.484)
>>> [round(v, 4) for v in wilson_interval(8, 10)]
[0.4902, 0.9433]
>>> auc_score(np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.9, 0.8]))
0.625
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats

LEVEL = 0.95


def check_level(level: float) -> float:
    """``level`` as a float in (0, 1), or a one-line error naming the parameter.

    Examples
    --------
    >>> check_level(0.9)
    0.9
    >>> check_level(95)
    Traceback (most recent call last):
    ...
    ValueError: level must be a confidence level in (0, 1), got 95
    """
    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating, np.integer)):
        raise ValueError(f"level must be a confidence level in (0, 1), got {level!r}")
    if not 0.0 < float(level) < 1.0:  # also rejects NaN
        raise ValueError(f"level must be a confidence level in (0, 1), got {level!r}")
    return float(level)


def z_value(level: float = LEVEL) -> float:
    """Two-sided standard-normal quantile ``z_{(1 + level)/2}`` (1.96 at 0.95).

    Examples
    --------
    >>> round(z_value(0.95), 4)
    1.96
    """
    return float(stats.norm.ppf(0.5 + check_level(level) / 2))


def t_interval(values: np.ndarray, level: float = LEVEL, *, axis: int = 0
               ) -> tuple[float | np.ndarray, float | np.ndarray, float | np.ndarray]:
    """Mean and Student-t interval along ``axis`` (NaN bounds with fewer than 2 values).

    Parameters
    ----------
    values : array
        Samples; the interval is for their mean, with ``n - 1`` degrees of freedom.
    level : float
        Confidence level in (0, 1).
    axis : int
        Axis of the samples; the other axes are kept.

    Returns
    -------
    (mean, ci_lower, ci_upper)
        Floats for 1-d input, arrays otherwise. Zero spread gives the point itself.

    Examples
    --------
    >>> import numpy as np
    >>> [round(float(v), 4) for v in t_interval(np.array([1.0, 2.0, 3.0]), 0.9)]
    [2.0, 0.3141, 3.6859]
    """
    level = check_level(level)
    values = np.asarray(values, dtype=float)
    mean = values.mean(axis=axis) if values.shape[axis] else np.full(np.delete(values.shape, axis), np.nan)
    if values.shape[axis] < 2:
        nan = np.full_like(np.asarray(mean, dtype=float), np.nan)
        lo, hi = nan, nan.copy()
    else:
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # (near-)constant columns: handled below
            ci = stats.ttest_1samp(values, 0.0, axis=axis).confidence_interval(level)
        lo, hi = np.asarray(ci.low, dtype=float), np.asarray(ci.high, dtype=float)
        flat = np.ptp(values, axis=axis) == 0  # zero spread: scipy gives NaN; the interval is the point
        lo, hi = np.where(flat, mean, lo), np.where(flat, mean, hi)
    if np.ndim(mean) == 0:
        return float(mean), float(lo), float(hi)
    return mean, lo, hi


def percentile_interval(draws: np.ndarray, level: float = LEVEL, *, axis: int = 0
                        ) -> tuple[float | np.ndarray, float | np.ndarray]:
    """Percentile interval of bootstrap ``draws`` along ``axis`` (NaN draws ignored).

    Examples
    --------
    >>> lo, hi = percentile_interval(np.arange(101.0), 0.9)
    >>> round(float(lo), 9), round(float(hi), 9)
    (5.0, 95.0)
    """
    lo, hi = np.nanquantile(np.asarray(draws, dtype=float), [(1 - level) / 2, (1 + level) / 2], axis=axis)
    return lo, hi


def wilson_interval(k: int | np.ndarray, n: int | np.ndarray, level: float = LEVEL
                    ) -> tuple[float | np.ndarray, float | np.ndarray]:
    """Wilson score interval for ``k`` successes in ``n`` trials (arrays broadcast; NaN where n = 0).

    Examples
    --------
    >>> import numpy as np
    >>> lo, hi = wilson_interval(np.array([0, 5]), np.array([10, 10]))
    >>> [round(float(v), 4) for v in (*lo, *hi)]
    [0.0, 0.2366, 0.2775, 0.7634]
    """
    level = check_level(level)
    k_arr, n_arr = np.broadcast_arrays(np.asarray(k, dtype=int), np.asarray(n, dtype=int))
    if np.any(k_arr < 0) or np.any(k_arr > n_arr):
        raise ValueError("wilson_interval: k must lie in [0, n]")
    lo = np.full(k_arr.shape, np.nan)
    hi = np.full(k_arr.shape, np.nan)
    for i in np.ndindex(k_arr.shape):
        if n_arr[i] > 0:
            ci = stats.binomtest(int(k_arr[i]), int(n_arr[i])).proportion_ci(level, method="wilson")
            lo[i], hi[i] = ci.low, ci.high
    if lo.ndim == 0:
        return float(lo), float(hi)
    return lo, hi


def rank_auc(pos_scores: np.ndarray, neg_scores: np.ndarray) -> float | np.ndarray:
    """Exact AUC ``P(s_pos > s_neg) + P(s_pos = s_neg) / 2`` along the last axis (batched over the others).

    Examples
    --------
    >>> import numpy as np
    >>> rank_auc(np.array([0.9, 0.5]), np.array([0.1, 0.5]))
    0.875
    >>> rank_auc(np.array([[1.0], [0.0]]), np.array([[0.0], [1.0]])).tolist()
    [1.0, 0.0]
    """
    pos, neg = np.asarray(pos_scores, dtype=float), np.asarray(neg_scores, dtype=float)
    n_pos, n_neg = pos.shape[-1], neg.shape[-1]
    if n_pos == 0 or n_neg == 0:
        out = np.full(np.broadcast_shapes(pos.shape[:-1], neg.shape[:-1]), np.nan)
        return float(out) if out.ndim == 0 else out
    ranks = stats.rankdata(np.concatenate([pos, neg], axis=-1), axis=-1)
    auc = (ranks[..., :n_pos].sum(-1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return float(auc) if np.ndim(auc) == 0 else auc


def auc_score(y: np.ndarray, scores: np.ndarray) -> float:
    """Exact ROC AUC: binary ``scores`` (n,) or (n, 2) score class 1; (n, C) is the macro
    one-vs-rest mean over the classes present. NaN when only one class is present.

    Equals :func:`sklearn.metrics.roc_auc_score` (``multi_class="ovr"``, ``average="macro"``)
    wherever every class is present.

    Examples
    --------
    >>> import numpy as np
    >>> auc_score(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    0.75
    >>> auc_score(np.array([1, 1]), np.array([0.2, 0.3]))
    nan
    """
    y = np.asarray(y)
    scores = np.asarray(scores, dtype=float)
    if scores.ndim == 1 or scores.shape[1] == 2:
        s = scores if scores.ndim == 1 else scores[:, 1]
        return float(rank_auc(s[y == 1], s[y != 1]))
    vals = [rank_auc(scores[y == c, c], scores[y != c, c]) for c in range(scores.shape[1])]
    vals = [v for v in vals if np.isfinite(v)]
    return float(np.mean(vals)) if vals else float("nan")
