"""Frequency probes against the generator's exact modes: the physics' features nearly exact, material
unknown much worse, the mean at R^2 ~ 0; tables consistent with the predictions; bad input."""

from __future__ import annotations

import numpy as np
import pytest

from data_catalog.vibraverse import vibraverse
from widgets.figures.frequency_probe import r2_figure, scatter_figure
from workbench.analyses.frequency_probe import frequency_probe


@pytest.fixture(scope="module")
def probe():
    ds = vibraverse(n=300, seed=1)
    return ds, frequency_probe(ds, n_modes=2, n_boot=100, seed=0)


def test_geometry_and_material_predict_the_modes_far_better_than_geometry_alone(probe):
    _, res = probe
    s = res.summary.set_index(["features", "mode", "metric"])
    for mode in (1, 2):
        full, geo = s.loc[("geometry+material", mode, "r2")], s.loc[("geometry", mode, "r2")]
        assert full["value"] > 0.95 and full["value_ci_lower"] > geo["value_ci_upper"]
        assert s.loc[("geometry+material", mode, "median_rel_error"), "value"] < 0.06
        assert abs(s.loc[("mean", mode, "r2"), "value"]) < 0.1  # the floor
        assert s.loc[("sound", mode, "r2"), "value"] > s.loc[("mean", mode, "r2"), "value_ci_upper"]
    for _, row in res.summary.iterrows():
        assert row["value_ci_lower"] <= row["value"] + 1e-12 and row["value"] <= row["value_ci_upper"] + 1e-12


def test_tables_agree_with_the_truth_and_the_figures(probe):
    ds, res = probe
    p = res.predictions
    freqs = ds.ground_truth["freqs"]
    np.testing.assert_allclose(p["truth_hz"], freqs[p["object"], p["mode"] - 1], rtol=1e-12)
    for (features, mode), part in p.groupby(["features", "mode"]):
        y, q = np.log(part["truth_hz"]), np.log(part["predicted_hz"])
        r2 = 1 - ((y - q) ** 2).sum() / ((y - y.mean()) ** 2).sum()
        row = res.summary.set_index(["features", "mode", "metric"]).loc[(features, mode, "r2")]
        assert row["value"] == pytest.approx(r2, rel=1e-10) and row["n_test"] == len(part)
    fig = scatter_figure(res, 1)
    first = p[(p["mode"] == 1) & (p["features"] == "geometry+material")]
    np.testing.assert_allclose(fig.data[0].y, first["predicted_hz"])
    bars = r2_figure(res)
    np.testing.assert_allclose(bars.data[0].y, res.summary.query("metric == 'r2' and mode == 1")["value"])


def test_bad_input_fails_clearly(probe):
    ds, _ = probe
    with pytest.raises(ValueError, match="n_modes"):
        frequency_probe(ds, n_modes=0)
    with pytest.raises(ValueError, match="features"):
        frequency_probe(ds, features=["pixels"])
    with pytest.raises(ValueError, match="test_size"):
        frequency_probe(ds, test_size=1.5)
    from workbench import load_dataset

    with pytest.raises(ValueError, match="vibraverse"):
        frequency_probe(load_dataset("synthetic-imbalance", n=50))
