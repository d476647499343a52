"""Learning curves per coalition: tables, gap and intervals consistent with the per-run scores."""

import numpy as np
import pytest
from scipy import stats

from workbench import load_dataset
from workbench.analyses.learning_curves import learning_curves


@pytest.fixture(scope="module")
def res():
    ds = load_dataset("synthetic-xor", n=600)
    return learning_curves(ds, sizes=[60, 300], seeds=[0, 1, 2], epochs=15, progress=False)


def test_gap_is_paired_difference_at_full_n(res):
    last = res.runs[res.runs["n"] == 300].pivot(index="seed", columns="coalition", values="accuracy")
    uni = ["a", "b", "noise"]
    best = last[uni].mean().idxmax()
    assert np.isclose(res.gap, (last["a+b+noise"] - last[best]).mean())
    assert len(res.runs) == 7 * 2 * 3


def test_curves_are_means_of_runs(res):
    r = res.runs
    for (c, n), g in r.groupby(["coalition", "n"]):
        row = res.curves[(res.curves["coalition"] == c) & (res.curves["n"] == n)].iloc[0]
        assert np.isclose(row["accuracy"], g["accuracy"].mean())
        assert row["accuracy_ci_lower"] <= row["accuracy"] <= row["accuracy_ci_upper"]
    assert set(res.pairs.columns) >= {"connection_r2", "connection_r2_ci_lower", "heterogeneity"}


def test_heterogeneity_is_the_pair_gain_over_its_better_member(res):
    last = res.runs[res.runs["n"] == 300].pivot(index="seed", columns="coalition", values="accuracy")
    for _, row in res.pairs.iterrows():
        a, b = row["source"], row["target"]
        pair = "+".join(m for m in ["a", "b", "noise"] if m in (a, b))
        better = a if last[a].mean() >= last[b].mean() else b
        diff = last[pair] - last[better]
        assert np.isclose(row["heterogeneity"], diff.mean())
        assert np.isclose(row["heterogeneity"], last[pair].mean() - max(last[a].mean(), last[b].mean()))
        half = stats.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff))
        assert np.isclose(row["heterogeneity_ci_upper"] - row["heterogeneity"], half, atol=1e-12)


def test_too_large_size_is_named():
    ds = load_dataset("synthetic-xor", n=100)
    with pytest.raises(ValueError, match="sizes"):
        learning_curves(ds, sizes=[1000], seeds=[0], epochs=1, progress=False)


def test_connection_folds_are_shuffled_on_class_sorted_data():
    # a: one-hot of the class, b: a fixed table of the class, rows sorted by class (as mfeat is).
    # Unshuffled 5-fold CV would hold out two whole classes per fold and predict only the
    # intercept for them (R^2 < 0); with shuffled folds b is exactly linear in a: R^2 ~ 1.
    from workbench.analyses.learning_curves import connection_r2

    cls = np.repeat(np.arange(10), 40)
    a = np.eye(10)[cls] + 0.01 * np.random.default_rng(0).normal(size=(400, 10))
    b = np.random.default_rng(1).normal(size=(10, 4))[cls]
    r2 = connection_r2({"a": a, "b": b}, seed=0).set_index(["source", "target"])["connection_r2"]
    assert r2[("a", "b")] > 0.99
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import cross_val_predict

    unshuffled = cross_val_predict(RidgeCV(alphas=np.logspace(-3, 3, 7)), a, b, cv=5)
    assert 1 - ((b - unshuffled) ** 2).sum() / ((b - b.mean(0)) ** 2).sum() < 0  # the failure it avoids
    with pytest.raises(ValueError, match="folds"):
        connection_r2({"a": a, "b": b}, folds=1)
