"""Intervals under missingness: Mondrian calibration per presence pattern keeps coverage on every
pattern where pooled calibration under-covers one (over 200 random splits); absent modalities are
null players in the Shapley analysis (both value methods)."""

from __future__ import annotations

import numpy as np
import pytest

from workbench import load_dataset
from workbench.analyses.shapley import conformal_shapley
from workbench.stats.conformal import marginal_interval, mondrian_bounds
from workbench.training.config import TrainConfig


def test_per_pattern_calibration_covers_every_pattern_where_pooled_calibration_does_not():
    rng = np.random.default_rng(0)
    alpha, pooled, mondrian = 0.1, {"ab": [], "a": []}, {"ab": [], "a": []}
    for _ in range(200):
        n = 600
        groups = np.where(rng.random(n) < 0.75, "ab", "a")
        # samples missing b have far more spread in their Shapley values
        scores = rng.normal(size=n) * np.where(groups == "ab", 1.0, 3.0)
        cal, test = np.arange(300), np.arange(300, n)
        lo, hi = marginal_interval(scores[cal], alpha)
        mlo, mhi = mondrian_bounds(scores[cal], groups[cal], groups[test], alpha)
        for g in ("ab", "a"):
            rows = groups[test] == g
            s = scores[test][rows]
            pooled[g].append(np.mean((s >= lo[0]) & (s <= hi[0])))
            mondrian[g].append(np.mean((s >= mlo[rows, 0]) & (s <= mhi[rows, 0])))
    assert np.mean(pooled["a"]) < 1 - alpha - 0.1  # pooled calibration under-covers the rarer pattern
    for g in ("ab", "a"):
        assert np.mean(mondrian[g]) >= 1 - alpha - 0.02


@pytest.fixture(scope="module")
def missing():
    ds = load_dataset("synthetic-missing", n=500)
    return ds, ds.split(seed=0)


@pytest.mark.parametrize("method", ["masked", "retrain"])
def test_absent_modalities_are_null_players(missing, method):
    ds, splits = missing
    res = conformal_shapley(ds, splits, value_method=method, config=TrainConfig(epochs=3, progress=False),
                            progress=False, calibrate_by="pattern")
    values = res.values
    present = {m: ds.presence(m).numpy() for m in ds.modality_names}
    absent = values[[not present[m][s] for s, m in zip(values["sample"], values["modality"], strict=True)]]
    assert len(absent) > 0 and np.abs(absent["phi"]).max() < 1e-12  # zero up to float rounding of V @ W
    assert res.efficiency_max_error < 1e-9
    assert "pattern" in values and (res.modalities["calibrated_by"] == "pattern").all()
    test = values[values["split"] == "test"]
    assert test["covered"].mean() == pytest.approx(res.modalities["coverage"].mean(), abs=1e-12)


def test_bad_calibrate_by_is_refused_before_training(missing):
    ds, splits = missing
    with pytest.raises(ValueError, match="unknown calibrate_by 'groups'"):
        conformal_shapley(ds, splits, calibrate_by="groups")
