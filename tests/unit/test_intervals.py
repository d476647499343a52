"""The shared intervals (workbench.stats.intervals) against scipy, hand values and scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from workbench.stats.intervals import (
    auc_score,
    check_level,
    rank_auc,
    t_interval,
    wilson_interval,
    z_value,
)


def test_t_interval_equals_scipy_and_hand_value():
    x = np.random.default_rng(0).normal(1.0, 2.0, 25)
    for level in (0.8, 0.95, 0.99):
        mean, lo, hi = t_interval(x, level)
        ref_lo, ref_hi = stats.t.interval(level, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
        assert mean == pytest.approx(x.mean())
        assert (lo, hi) == pytest.approx((ref_lo, ref_hi))
    # hand value: [1, 2, 3], sd 1, t_{0.975, 2} = 4.302653 -> 2 -+ 4.302653 / sqrt(3)
    half = 4.302652729749462 / math.sqrt(3)
    assert t_interval(np.array([1.0, 2.0, 3.0])) == pytest.approx((2.0, 2.0 - half, 2.0 + half))


def test_t_interval_columns_degenerate_and_small_samples():
    x = np.random.default_rng(1).normal(size=(30, 3))
    x[:, 2] = 0.5  # no spread: the interval is the point
    mean, lo, hi = t_interval(x, 0.9, axis=0)
    for j in range(2):
        assert (lo[j], hi[j]) == pytest.approx(t_interval(x[:, j], 0.9)[1:])
    assert lo[2] == hi[2] == 0.5
    one = t_interval(np.array([3.0]))
    assert one[0] == 3.0 and np.isnan(one[1]) and np.isnan(one[2])


def test_wilson_interval_equals_scipy_and_hand_value():
    for k, n, level in ((0, 10, 0.95), (8, 10, 0.9), (37, 120, 0.99)):
        ref = stats.binomtest(k, n).proportion_ci(level, method="wilson")
        assert wilson_interval(k, n, level) == pytest.approx((ref.low, ref.high))
    # hand value: p = 0.8, n = 10, z = 1.959964
    z, p, n = 1.959963984540054, 0.8, 10
    centre, half = (p + z**2 / (2 * n)) / (1 + z**2 / n), z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    assert wilson_interval(8, 10) == pytest.approx((centre - half, centre + half))
    lo, hi = wilson_interval(np.array([2, 5, 0]), np.array([10, 10, 0]))
    assert lo.shape == (3,) and np.isnan(lo[2]) and np.isnan(hi[2])
    with pytest.raises(ValueError, match="k must lie in"):
        wilson_interval(11, 10)


def test_intervals_widen_with_level():
    x = np.random.default_rng(2).normal(size=40)
    widths = [np.subtract(*t_interval(x, lv)[:0:-1]) for lv in (0.5, 0.8, 0.95)]
    assert widths[0] < widths[1] < widths[2]
    w = [np.subtract(*wilson_interval(30, 100, lv)[::-1]) for lv in (0.5, 0.8, 0.95)]
    assert w[0] < w[1] < w[2]
    assert z_value(0.95) == pytest.approx(1.959963984540054)


@pytest.mark.parametrize("bad", [0, 1, 95, -0.1, float("nan"), "0.95", True, None])
def test_level_is_checked(bad):
    with pytest.raises(ValueError, match="level must be a confidence level in \\(0, 1\\)"):
        check_level(bad)
    with pytest.raises(ValueError, match="level"):
        t_interval(np.arange(5.0), bad)
    with pytest.raises(ValueError, match="level"):
        wilson_interval(3, 10, bad)


def test_auc_equals_sklearn():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    s = np.round(rng.normal(size=200) + y, 1)  # rounded: many ties
    assert auc_score(y, s) == pytest.approx(roc_auc_score(y, s))
    assert auc_score(y, np.c_[1 - s, s]) == pytest.approx(roc_auc_score(y, s))
    y3 = rng.integers(0, 3, 300)
    p = rng.dirichlet(np.ones(3), 300) + np.eye(3)[y3]
    p /= p.sum(1, keepdims=True)
    assert auc_score(y3, p) == pytest.approx(roc_auc_score(y3, p, multi_class="ovr", average="macro"))
    assert np.isnan(auc_score(np.ones(5, int), rng.random(5)))  # one class: NaN, not an error
    # batched over rows (permutation tests): each row equals the one-dimensional AUC
    pos, neg = rng.normal(1, 1, (4, 30)), rng.normal(0, 1, (4, 40))
    batch = rank_auc(pos, neg)
    for r in range(4):
        labels = np.r_[np.ones(30), np.zeros(40)]
        assert batch[r] == pytest.approx(roc_auc_score(labels, np.r_[pos[r], neg[r]]))
