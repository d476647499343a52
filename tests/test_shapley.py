"""Conformal Shapley intervals: axioms, closed forms, coverage, the pipeline on synthetic data."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from data_catalog.synthetic import imbalance
from workbench.conformal import (
    conditional_interval,
    exact_coverage,
    marginal_interval,
    mean_interval,
    order_indices,
)
from workbench.results import load_result
from workbench.shapley import (
    ShapleyResult,
    all_coalitions,
    conformal_shapley,
    intervals_for_alpha,
    permutation_coalitions,
    permutation_shapley,
    sample_permutations,
    select_top_q,
    shapley_from_values,
)
from workbench.trainer import TrainConfig


# -- exact Shapley: closed form and axioms ----------------------------------------------------------
def oracle_game(n: int, betas=(1.0, 1.7, 0.35, 1.3), c: float = 0.5, seed: int = 0):
    """Note T2: independent modalities adding to a linear oracle, squared loss.

    ``val_i(S) = (y_i - c)^2 - (y_i - c - sum_{j in S} g_ij)^2`` with ``g_ij = beta_j x_ij``;
    closed form ``phi_ij = g_ij (2 (y_i - c) - sum_l g_il)``.
    """
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((n, len(betas))) * np.asarray(betas)
    y = c + g.sum(1) + rng.standard_normal(n)
    masks = all_coalitions(len(betas))
    values = (y - c)[:, None] ** 2 - ((y - c)[:, None] - g @ masks.T) ** 2
    closed = g * (2 * (y - c) - g.sum(1))[:, None]
    return values, closed, np.asarray(betas)


def test_closed_form_linear_oracle():
    values, closed, betas = oracle_game(4000)
    phi = shapley_from_values(values)
    np.testing.assert_allclose(phi, closed, atol=1e-10)
    # E phi_j = beta_j^2 Var(x_j) (note T2); 4000 samples -> within 0.15
    np.testing.assert_allclose(phi.mean(0), betas**2, atol=0.15)
    np.testing.assert_allclose(phi.sum(1), values[:, -1] - values[:, 0], atol=1e-10)


def brute_force_shapley(v: np.ndarray, m: int) -> np.ndarray:
    """Shapley values by averaging marginal contributions over all m! orders."""
    phi = np.zeros((v.shape[0], m))
    for order in itertools.permutations(range(m)):
        k = 0
        for j in order:
            phi[:, j] += v[:, k | (1 << j)] - v[:, k]
            k |= 1 << j
    return phi / math.factorial(m)


@pytest.mark.parametrize("m", [2, 3, 5])
def test_random_game_axioms(m):
    rng = np.random.default_rng(m)
    v = rng.normal(size=(7, 2**m))
    v[:, 0] = 0.0
    phi = shapley_from_values(v)
    np.testing.assert_allclose(phi, brute_force_shapley(v, m), atol=1e-12)
    np.testing.assert_allclose(phi.sum(1), v[:, -1], atol=1e-12)  # efficiency
    w = rng.normal(size=v.shape)
    np.testing.assert_allclose(shapley_from_values(2 * v - w), 2 * phi - shapley_from_values(w), atol=1e-12)
    masks = all_coalitions(m)
    # null player: make player 0 add nothing to any coalition
    v_null = v.copy()
    v_null[:, masks[:, 0]] = v[:, [k & ~1 for k in np.flatnonzero(masks[:, 0])]]
    assert np.abs(shapley_from_values(v_null)[:, 0]).max() < 1e-12
    # symmetry: a game that depends only on coalition size and on players {0, 1} symmetrically
    v_sym = rng.normal(size=(3, m + 1))[:, masks.sum(1)]
    phi_sym = shapley_from_values(v_sym)
    np.testing.assert_allclose(phi_sym[:, 0], phi_sym[:, 1], atol=1e-12)


def test_permutation_sampling_error_bound_and_efficiency():
    rng = np.random.default_rng(1)
    m = 6
    v = rng.normal(size=(20, 2**m))
    v[:, 0] = 0
    exact = shapley_from_values(v)
    perms = sample_permutations(m, 400, seed=0)
    coal = permutation_coalitions(perms)
    key = coal @ (1 << np.arange(m))
    phi, se = permutation_shapley(v[:, key], coal, perms)
    np.testing.assert_allclose(phi.sum(1), v[:, -1], atol=1e-10)  # every order is efficient
    z = np.abs(phi - exact) / se
    assert np.mean(z < 1.96) > 0.85 and z.max() < 5


# -- marginal conformal intervals -------------------------------------------------------------------
def test_order_indices_floor_fix():
    assert order_indices(50, 0.2) == (5, 46)       # ceil would give l = 6: coverage 0.784
    assert order_indices(10, 0.05) == (0, 11)      # out of range -> (-inf, +inf)
    lo, hi = marginal_interval(np.arange(10.0), 0.05)
    assert lo[0] == -np.inf and hi[0] == np.inf
    for c, a in itertools.product([19, 50, 99, 200], [0.05, 0.1, 0.2]):
        assert 1 - a <= exact_coverage(c, a) < 1 - a + 2 / (c + 1) + 1e-12


@pytest.fixture(scope="module")
def oracle_phi():
    return shapley_from_values(oracle_game(6000, seed=3)[0])


@pytest.mark.parametrize("alpha", [0.05, 0.1, 0.2])
def test_marginal_coverage_over_random_splits(oracle_phi, alpha):
    rng = np.random.default_rng(7)
    cover = []
    for _ in range(300):
        perm = rng.permutation(len(oracle_phi))
        cal, test = oracle_phi[perm[:200]], oracle_phi[perm[200:400]]
        lo, hi = marginal_interval(cal, alpha)
        cover.append(((test >= lo) & (test <= hi)).mean(0))
    coverage = np.mean(cover, 0)
    assert np.all(coverage >= 1 - alpha - 0.02), coverage
    assert np.all(coverage <= 1 - alpha + 2 / 201 + 0.02), coverage


def test_intervals_shrink_with_calibration_size(oracle_phi):
    rng = np.random.default_rng(0)
    widths = {}
    for c in (40, 1000):
        w = []
        for _ in range(200):
            lo, hi = marginal_interval(oracle_phi[rng.choice(len(oracle_phi), c, replace=False)], 0.1)
            w.append(hi - lo)
        widths[c] = np.mean(w, 0)
    assert np.all(widths[1000] < widths[40])
    lo_b, hi_b = marginal_interval(oracle_phi[:500], 0.1, bonferroni=True)
    lo, hi = marginal_interval(oracle_phi[:500], 0.1)
    assert np.all(hi_b - lo_b > hi - lo)


def test_mean_interval_matches_scipy():
    from scipy import stats

    x = np.random.default_rng(0).normal(0.3, 1, size=(80, 1))
    out = mean_interval(x, 0.05)
    ref = stats.ttest_1samp(x[:, 0], 0.0, alternative="greater")
    assert out["p_value"][0] == pytest.approx(ref.pvalue)
    lo, hi = stats.t.interval(0.95, 79, loc=x.mean(), scale=stats.sem(x[:, 0]))
    assert (out["mean_lower"][0], out["mean_upper"][0]) == pytest.approx((lo, hi))


# -- conditional intervals --------------------------------------------------------------------------
def test_augmented_fit_with_intercept_only_is_split_conformal():
    s = np.random.default_rng(2).normal(size=59)
    lo, hi = conditional_interval(np.zeros((59, 0)), s, np.zeros((1, 0)), 0.2, augmented=True, tol=1e-7)
    ref_lo, ref_hi = marginal_interval(s, 0.2)
    assert lo[0] == pytest.approx(ref_lo[0], abs=1e-5) and hi[0] == pytest.approx(ref_hi[0], abs=1e-5)


def test_conditional_coverage_per_group():
    """Note T5: the spread of phi depends on a group in span(Omega); the quantile-regression
    interval covers in each group, the marginal interval under-covers the wide group."""
    rng = np.random.default_rng(0)
    cond_cov, marg_cov = [], []
    for _ in range(60):
        g = rng.integers(0, 2, 700)
        phi = rng.normal(size=700) * np.where(g == 1, 3.0, 0.5)
        feat = g[:, None].astype(float)
        lo, hi = conditional_interval(feat[:300], phi[:300], feat[300:], 0.1)
        mlo, mhi = marginal_interval(phi[:300], 0.1)
        hit, mhit = (phi[300:] >= lo) & (phi[300:] <= hi), (phi[300:] >= mlo[0]) & (phi[300:] <= mhi[0])
        test_g = g[300:]
        cond_cov.append([hit[test_g == k].mean() for k in (0, 1)])
        marg_cov.append([mhit[test_g == k].mean() for k in (0, 1)])
    cond_cov, marg_cov = np.mean(cond_cov, 0), np.mean(marg_cov, 0)
    assert np.all(cond_cov >= 0.9 - 0.03), cond_cov
    assert marg_cov[1] < 0.87 and marg_cov[0] > 0.97, marg_cov


# -- the pipeline ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def noisy_data():
    ds = imbalance(n=700, n_classes=3, dims=[8, 8], snr=[3.0, 0.0], names=["signal", "noise"], seed=4)
    return ds, ds.split(seed=0, train=0.5, calib=0.3, test=0.2)


@pytest.fixture(scope="module", params=["retrain", "masked"])
def pipeline_result(request, noisy_data):
    ds, splits = noisy_data
    cfg = TrainConfig(epochs=12, seed=0, progress=False, hidden=32, embed=16)
    return conformal_shapley(ds, splits, value_method=request.param, config=cfg, alpha=0.1, progress=False)


def test_pipeline_useless_modality_and_efficiency(pipeline_result):
    res = pipeline_result
    assert res.efficiency_max_error < 1e-9
    mods = res.modalities.set_index("modality")
    assert mods.loc["noise", "lower"] <= 0 <= mods.loc["noise", "upper"]
    assert abs(mods.loc["noise", "mean"]) < 0.05
    assert mods.loc["signal", "mean"] > 0.4 and mods.loc["signal", "p_value"] < 1e-6
    assert mods.loc["signal", "mean_lower"] > mods.loc["noise", "mean_upper"]
    assert (mods["coverage"] >= 0.8).all()
    # the lower-bound rule mostly keeps the informative modality, whose predictor is far
    # above the 1/3 of the noise modality alone
    sel = res.selected.query("q == 1")
    assert (sel["subset"] == "signal").mean() >= 0.6
    acc = res.selection.set_index(["rule", "q"])["accuracy"]
    assert acc[("conformal", 1)] >= 0.7 and acc[("greedy", 1)] >= 0.8
    assert acc[("conformal", 2)] == acc[("all", 2)]
    assert (sel["n_positive_lower"] <= 2).all() and sel["n_positive_lower"].mean() > 0.5


def test_result_roundtrip_and_alpha_recompute(pipeline_result, tmp_path):
    res = pipeline_result
    res.save(tmp_path / "shapley")
    back = load_result(tmp_path / "shapley")
    assert isinstance(back, ShapleyResult) and back.modality_names == res.modality_names
    pd.testing.assert_frame_equal(back.values, res.values)
    same = intervals_for_alpha(back, res.alpha)
    np.testing.assert_allclose(same["lower"], res.modalities["lower"])
    wide, narrow = intervals_for_alpha(back, 0.05), intervals_for_alpha(back, 0.3)
    assert (wide["width"] >= narrow["width"]).all()


def test_select_top_q_and_bad_input(noisy_data):
    assert select_top_q(np.array([[0.0, 2.0, 1.0], [3.0, -1.0, 0.5]]), 1).tolist() == [
        [False, True, False], [True, False, False]]
    ds, splits = noisy_data
    with pytest.raises(ValueError, match="value_method"):
        conformal_shapley(ds, splits, value_method="shap", progress=False)


def test_figures_and_panel_build(pipeline_result):
    from widgets.figures import figures_for_result
    from widgets.figures.shapley import sample_forest_figure
    from widgets.panels.shapley import shapley_panel

    figs = figures_for_result("shapley", pipeline_result)
    assert len(figs) == 3 and all(len(f.data) for f in figs)
    sample = int(pipeline_result.selected["sample"].iloc[0])
    assert len(sample_forest_figure(pipeline_result.values, sample).data) == 3
    panel = shapley_panel(pipeline_result)
    slider = panel.children[1].children[0].children[0].children[0]
    slider.value = 0.3  # redraws from intervals_for_alpha without error
    assert slider.description == "alpha"


def test_masked_fast_path_equals_forward_with_mask(noisy_data):
    import torch

    from workbench.shapley import _embeddings, _masked_probs
    from workbench.trainer import Trainer, predict_proba

    ds, splits = noisy_data
    model = Trainer(TrainConfig(epochs=1, progress=False, fusion="gated", hidden=16, embed=8)).fit(ds, splits).model_
    idx = splits.test
    emb = _embeddings(model, ds, idx)
    for members in all_coalitions(2)[1:]:
        mask = {m: torch.full((len(idx),), bool(b)) for m, b in zip(ds.modality_names, members, strict=True)}
        ref, _ = predict_proba(model, ds, idx, mask=mask)
        torch.testing.assert_close(_masked_probs(model, emb, members, ds, idx), ref)


def test_permutation_path_matches_exact(noisy_data):
    """With M = 2 the two antithetic orders are all orders: permutation sampling is exact."""
    from workbench.trainer import Trainer

    ds, splits = noisy_data
    model = Trainer(TrainConfig(epochs=1, progress=False, hidden=16, embed=8)).fit(ds, splits).model_
    kw = dict(value_method="masked", model=model, progress=False)
    exact = conformal_shapley(ds, splits, **kw)
    sampled = conformal_shapley(ds, splits, max_exact=1, n_permutations=2, **kw)
    assert sampled.estimator == "permutation(2)"
    np.testing.assert_allclose(sampled.values["phi"], exact.values["phi"], atol=1e-12)
