"""Conformal intervals for per-sample scores (here: per-modality Shapley values).

Implements the interval constructions of Chandy et al., "Uncertainty-Aware Multimodal
Learning via Conformal Shapley Intervals" (arXiv 2602.00171; method note
``shared/methods/shapley.md``), which treat the per-sample Shapley value itself as the
score to be predicted for an unseen sample.

Marginal interval (Alg. 1, with the note's errata)
    From ``c`` calibration scores phi^(1) <= ... <= phi^(c) of one modality,
    ``l = floor((c+1) alpha/2)``, ``u = ceil((c+1)(1 - alpha/2))`` and
    ``C = [phi^(l), phi^(u)]`` with ``phi^(0) = -inf`` and ``phi^(c+1) = +inf``.
    Under exchangeability of calibration and test points (conditional on the trained
    models) ``P(phi_new in C) = (u - l)/(c + 1) >= 1 - alpha`` for continuous scores.
    The draft's ``ceil`` for ``l`` can under-cover; its code's clamps ``1 <= l, u <= c``
    break validity for small ``c``: both are replaced here (note section 2, errata).
    ``bonferroni=True`` uses ``alpha / M`` per modality so that all ``M`` intervals
    cover simultaneously with probability >= 1 - alpha (union bound).

Dataset-level interval
    Student-t interval for the mean Shapley value of each modality and the one-sided
    t-test of ``H0: E phi_j <= 0`` (note section 1, "global test").

Conditional interval (Alg. 2, a feasible version of Gibbs, Cherian & Candes, JRSSB 2025)
    Linear quantile regression of phi_j on features ``Omega(x)`` (intercept + a few PCA
    components of the model's embeddings), levels ``alpha/2`` and ``1 - alpha/2``, fitted
    by minimising the pinball loss (scikit-learn ``QuantileRegressor``, HiGHS LP, no
    penalty). Two fits are offered:

    * ``augmented=True``: the Gibbs et al. procedure for a finite-dimensional class: the
      test point joins the fit with an imputed score ``s`` and the bound is the largest
      ``s`` with ``s <= g_s(x)`` (found by bisection; the covered set is an interval).
      Guarantee (Gibbs et al., Thm 1, unregularised finite-dimensional class): for every
      non-negative ``f = Omega^T b``, ``E[f(X) 1{phi in C(X)}] >= (1 - alpha) E f(X)``, i.e.
      coverage >= 1 - alpha under every covariate shift in the span of the features
      (for instance within every group whose indicator is a feature). One LP per
      bisection step: use it for up to a few hundred test points.
    * ``augmented=False`` (default, the fast path): the "naive" fit on the calibration
      points only, as in the authors' code. It carries no finite-sample guarantee; its
      coverage error is of order ``p/c`` per bound (``p = d + 1`` parameters, ``c``
      calibration points: a quantile regression with ``p`` parameters interpolates ``p``
      points, so its in-sample level is off by up to ``p/c`` and out of sample it
      under-covers by about that much; Gibbs et al. section 2). The stated error is
      :func:`conditional_coverage_error` (``2p/(c+1)`` for the two-sided naive interval,
      ``p/(c+1)`` over-coverage and none under for the augmented one), reported in the
      result beside the interval. When it reaches ``alpha`` (too few calibration points for
      the features: at 5 points the naive interval was finite and covered 0%, at 12 points
      53%) the naive interval is returned unbounded ``(-inf, +inf)``, with a warning, rather
      than falsely finite.

    Choices (note marks the RKHS part UNCONFIRMED / optional): no RKHS term (lambda_1 = 0)
    and no ridge penalty (lambda_2 = 0), so no tuning split is needed and the
    calibration set stays exchangeable with test points.

Example
-------
>>> import numpy as np
>>> from workbench.stats.conformal import marginal_interval
>>> lo, hi = marginal_interval(np.random.default_rng(0).normal(size=(199, 2)), alpha=0.1)
>>> bool(np.all(lo < hi))
True
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from workbench.stats.intervals import LEVEL, t_interval


def order_indices(c: int, alpha: float) -> tuple[int, int]:
    """1-based order-statistic indices ``(l, u)`` of the marginal interval (floor/ceil)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    lo = math.floor((c + 1) * alpha / 2)
    hi = math.ceil((c + 1) * (1 - alpha / 2) - 1e-12)
    return lo, hi


def exact_coverage(c: int, alpha: float) -> float:
    """Coverage ``(u - l)/(c + 1)`` of the marginal interval for continuous scores."""
    lo, hi = order_indices(c, alpha)
    return (min(hi, c + 1) - max(lo, 0)) / (c + 1)


def coverage_sd(alpha: float, n_calib: int, n_test: int) -> float:
    """Standard deviation of the test-set coverage of a marginal interval over random splits.

    Conditional on the calibration set the coverage is Beta-distributed with variance about
    ``alpha (1 - alpha) / c``; the ``t`` test points add binomial variance ``alpha (1 - alpha) / t``.
    Use it to judge an observed coverage (``coverage >= 1 - alpha - 3 * coverage_sd(...)``).

    Examples
    --------
    >>> round(coverage_sd(0.1, 400, 400), 4)
    0.0212
    """
    return math.sqrt(alpha * (1 - alpha) * (1 / n_calib + 1 / max(n_test, 1)))


def marginal_interval(scores: np.ndarray, alpha: float = 0.1, *, bonferroni: bool = False
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Marginal conformal interval per column of ``scores`` (calibration rows).

    Parameters
    ----------
    scores : array (c, M)
        Calibration Shapley values, one column per modality (1-D is one modality).
    alpha : float
        Miscoverage per modality (or overall with ``bonferroni``).
    bonferroni : bool
        Use ``alpha / M`` per column for simultaneous coverage of all ``M`` intervals.

    Returns
    -------
    lower, upper : arrays (M,), ``-inf``/``+inf`` where the order statistic is out of range.

    Examples
    --------
    >>> lo, hi = marginal_interval(np.arange(1.0, 20.0), alpha=0.2)
    >>> float(lo[0]), float(hi[0])
    (2.0, 18.0)
    """
    s = np.asarray(scores, dtype=float)
    s = s[:, None] if s.ndim == 1 else s
    c, m = s.shape
    a = alpha / m if bonferroni else alpha
    lo_i, hi_i = order_indices(c, a)
    srt = np.sort(s, axis=0)
    lower = srt[lo_i - 1] if lo_i >= 1 else np.full(m, -np.inf)
    upper = srt[hi_i - 1] if hi_i <= c else np.full(m, np.inf)
    return lower, upper


def mondrian_bounds(scores: np.ndarray, groups: np.ndarray, test_groups: np.ndarray, alpha: float = 0.1, *,
                    bonferroni: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Group-conditional (Mondrian) conformal intervals: each test row gets the marginal interval
    (:func:`marginal_interval`) of the calibration rows of its own group, so coverage ``1 - alpha``
    holds within every group (Vovk et al. 2003; here the groups are presence patterns). A group
    with too few calibration rows gets an unbounded interval.

    Returns ``lower, upper`` of shape ``(len(test_groups), M)``.

    Examples
    --------
    >>> s = np.r_[np.arange(1.0, 20.0), 10 * np.arange(1.0, 20.0)]
    >>> g = np.array(["a"] * 19 + ["b"] * 19)
    >>> lo, hi = mondrian_bounds(s, g, np.array(["a", "b", "c"]), alpha=0.2)
    >>> lo[:, 0].tolist(), hi[:, 0].tolist()
    ([2.0, 20.0, -inf], [18.0, 180.0, inf])
    """
    s = np.asarray(scores, dtype=float)
    s = s[:, None] if s.ndim == 1 else s
    groups, test_groups = np.asarray(groups), np.asarray(test_groups)
    lower = np.full((len(test_groups), s.shape[1]), -np.inf)
    upper = np.full((len(test_groups), s.shape[1]), np.inf)
    for g in np.unique(test_groups):
        rows = groups == g
        if rows.any():
            lo, hi = marginal_interval(s[rows], alpha, bonferroni=bonferroni)
            lower[test_groups == g], upper[test_groups == g] = lo, hi
    return lower, upper


def mean_interval(scores: np.ndarray, level: float = LEVEL) -> dict[str, np.ndarray]:
    """Student-t interval at ``level`` for the mean of each column and the one-sided test of mean <= 0.

    Returns a dict of arrays ``mean, se, mean_ci_lower, mean_ci_upper, t, p_value``; the
    interval is :func:`workbench.stats.intervals.t_interval`.

    Examples
    --------
    >>> out = mean_interval(np.r_[np.ones(10), -np.ones(10)] + 0.5, level=0.95)
    >>> bool(out["mean_ci_lower"][0] < 0.5 < out["mean_ci_upper"][0])
    True
    """
    s = np.asarray(scores, dtype=float)
    s = s[:, None] if s.ndim == 1 else s
    n = s.shape[0]
    mean, lower, upper = t_interval(s, level, axis=0)
    se = s.std(0, ddof=1) / np.sqrt(n) if n > 1 else np.full(s.shape[1], np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(se > 0, mean / se, np.sign(mean) * np.inf)
    return {"mean": mean, "se": se, "mean_ci_lower": lower, "mean_ci_upper": upper,
            "t": t, "p_value": stats.t.sf(t, df=n - 1)}


# -- conditional (Gibbs et al.) ----------------------------------------------------------------
def _design(features: np.ndarray) -> np.ndarray:
    f = np.asarray(features, dtype=float)
    return np.column_stack([np.ones(len(f)), f])


def _fit_quantile(design: np.ndarray, y: np.ndarray, tau: float) -> np.ndarray:
    from sklearn.linear_model import QuantileRegressor

    reg = QuantileRegressor(quantile=tau, alpha=0.0, fit_intercept=False, solver="highs")
    return reg.fit(design, y).coef_


def _augmented_upper(design: np.ndarray, y: np.ndarray, x_new: np.ndarray, tau: float,
                     *, tol: float, max_iter: int = 40) -> float:
    """Largest imputed score ``s`` with ``s <= g_s(x_new)`` (Gibbs et al. eq. 3.1)."""
    full = np.vstack([design, x_new])
    span = max(float(np.ptp(y)), 1e-9)
    lo, hi = float(y.min()) - span, float(y.max()) + span

    def covered(s: float) -> bool:
        coef = _fit_quantile(full, np.append(y, s), tau)
        return s <= float(x_new @ coef) + 1e-9

    if not covered(lo):
        return lo
    if covered(hi):  # the fit follows the imputed score without bound: the interval is open
        return np.inf
    for _ in range(max_iter):
        if hi - lo < tol:
            break
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if covered(mid) else (lo, mid)
    return lo


def conditional_coverage_error(n_calib: int, n_features: int, *, augmented: bool = False) -> float:
    """Stated coverage error of the conditional interval with ``n_features`` features (+ intercept).

    Naive fit: ``2p/(c+1)`` (each of the two bounds may be off by ``p/(c+1)``); augmented fit
    (Gibbs et al., Thm 3): ``p/(c+1)``, as over-coverage only. ``p = n_features + 1``.

    Examples
    --------
    >>> round(conditional_coverage_error(199, 4), 3)
    0.05
    """
    p = n_features + 1
    return (1.0 if augmented else 2.0) * p / (n_calib + 1)


def conditional_interval(features_calib: np.ndarray, scores_calib: np.ndarray, features_test: np.ndarray,
                         alpha: float = 0.1, *, augmented: bool = False, tol: float = 1e-4
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Per-test-point interval ``[g_{alpha/2}(x), g_{1-alpha/2}(x)]`` by linear quantile regression.

    Parameters
    ----------
    features_calib, features_test : arrays (c, d), (t, d)
        ``Omega(x)``, e.g. PCA components of the embeddings; an intercept is added.
    scores_calib : array (c,)
        Calibration Shapley values of one modality.
    alpha : float
    augmented : bool
        Gibbs et al.'s augmented fit (coverage guarantee over shifts in span(Omega), one LP
        per bisection step and test point) instead of the fast naive fit.

    Returns
    -------
    lower, upper : arrays (t,)
        Unbounded (``-inf``, ``+inf``) for the naive fit when
        :func:`conditional_coverage_error` ``>= alpha``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(200, 1)); s = z[:, 0] + rng.normal(size=200)
    >>> lo, hi = conditional_interval(z, s, np.array([[-2.0], [2.0]]), alpha=0.2)
    >>> bool(hi[1] > hi[0])
    True
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    d_cal, d_test = _design(features_calib), _design(features_test)
    y = np.asarray(scores_calib, dtype=float)
    if len(y) != len(d_cal):
        raise ValueError(f"scores_calib has {len(y)} rows, features_calib {len(d_cal)}")
    if not augmented and conditional_coverage_error(len(y), d_cal.shape[1] - 1) >= alpha:
        import warnings

        warnings.warn(f"conditional interval: {len(y)} calibration points are too few for {d_cal.shape[1] - 1} "
                      f"features at alpha={alpha} (stated coverage error "
                      f"{conditional_coverage_error(len(y), d_cal.shape[1] - 1):.2f} >= alpha); returning "
                      "unbounded intervals (use fewer features, more calibration points or augmented=True)",
                      stacklevel=2)
        return np.full(len(d_test), -np.inf), np.full(len(d_test), np.inf)
    if not augmented:
        lower = d_test @ _fit_quantile(d_cal, y, alpha / 2)
        upper = d_test @ _fit_quantile(d_cal, y, 1 - alpha / 2)
        return lower, upper
    upper = np.array([_augmented_upper(d_cal, y, x, 1 - alpha / 2, tol=tol) for x in d_test])
    # the lower bound is minus the upper bound of the negated scores at level 1 - alpha/2
    lower = -np.array([_augmented_upper(d_cal, -y, x, 1 - alpha / 2, tol=tol) for x in d_test])
    return lower, upper
