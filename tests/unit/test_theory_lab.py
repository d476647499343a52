"""Known answers of the theory lab (Lu 2023's example); small sizes, few seeds."""

import numpy as np
import pytest

from workbench.analyses.theory_lab import bayes_predictor, l1_theta, sample, theory_lab


def test_one_pair_identifies_theta_without_connection_noise():
    rng = np.random.default_rng(1)
    theta = rng.uniform(1, 2, 20)
    x, y, _ = sample(1, 0.05, 0.0, 0.1, theta, rng)
    assert np.max(np.abs(l1_theta(x, y, np.ones_like(x, dtype=bool)) - theta)) < 1e-12


def test_multimodal_excess_risk_is_zero_at_sigma_y_zero():
    res = theory_lab(ns=[8, 64], eps=[0.01], sigma_y=[0.0], learners=["mm"], seeds=5, progress=False)
    assert res.runs["excess_risk"].max() < 1e-20
    assert np.allclose(res.runs["theta_hat"], res.runs["theta"], atol=1e-12)


def test_bayes_predictor_smooths_with_connection_noise():
    x = np.linspace(0.01, 1, 500)
    m = bayes_predictor(x, np.array([1.5]), 1.0)[0]
    assert np.abs(np.diff(m)).max() < 0.05  # sin(1/(1.5 x)) itself jumps by ~1 near x = 0.01
    assert np.abs(np.diff(np.sin(1 / (1.5 * x)))).max() > 0.5


def test_heat_map_corners_advantage_and_its_vanishing():
    res = theory_lab(ns=[512], eps=[0.01], sigma_y=[0.0, 1.0], learners=["mm", "uni_mlp"], seeds=4,
                     mlp_steps=300, n_test=2048, progress=False)
    r = res.ratios.set_index("sigma_y")["ratio"]
    assert r[0.0] > 5  # connection + heterogeneity: multimodal far ahead
    assert r[1.0] < 1  # no connection: the advantage is gone


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="eps"):
        theory_lab(ns=[8], eps=[1.5], progress=False)
    with pytest.raises(ValueError, match="learners"):
        theory_lab(ns=[8], learners=["nope"], progress=False)
