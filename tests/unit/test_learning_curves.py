"""Learning curves per coalition: tables, gap and intervals consistent with the per-run scores."""

import numpy as np
import pytest

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


def test_too_large_size_is_named():
    ds = load_dataset("synthetic-xor", n=100)
    with pytest.raises(ValueError, match="sizes"):
        learning_curves(ds, sizes=[1000], seeds=[0], epochs=1, progress=False)
