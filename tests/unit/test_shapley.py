"""Conformal Shapley intervals: axioms, closed forms, coverage, the pipeline on synthetic data."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from data_catalog.synthetic import imbalance
from workbench.analyses.shapley import (
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
from workbench.stats.conformal import (
    conditional_interval,
    exact_coverage,
    marginal_interval,
    mean_interval,
    order_indices,
)
from workbench.store.results import load_result
from workbench.training.trainer import TrainConfig


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
    out = mean_interval(x, level=0.95)
    ref = stats.ttest_1samp(x[:, 0], 0.0, alternative="greater")
    assert out["p_value"][0] == pytest.approx(ref.pvalue)
    lo, hi = stats.t.interval(0.95, 79, loc=x.mean(), scale=stats.sem(x[:, 0]))
    assert (out["mean_ci_lower"][0], out["mean_ci_upper"][0]) == pytest.approx((lo, hi))


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
    assert mods.loc["signal", "mean_ci_lower"] > mods.loc["noise", "mean_ci_upper"]
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
    from widgets.text import caption_text

    figs = figures_for_result("shapley", pipeline_result)
    assert len(figs) == 3 and all(len(f.data) for f in figs)
    forest, selection, heat = (caption_text(f) for f in figs)
    assert "log-loss reduction (nats)" in forest and "> 0: the modality helps" in forest
    assert f"probability {1 - pipeline_result.alpha:.0%}" in forest and "t-interval" in forest
    assert "Wilson" in selection and "empty coalition (the class prior), in nats" in heat
    sample = int(pipeline_result.selected["sample"].iloc[0])
    sample_fig = sample_forest_figure(pipeline_result.values, sample)
    # every legend entry has a visible key: interval traces drawn only as error bars get a line key
    for fig in (figs[0], sample_fig):
        shown = [t for t in fig.data if t.showlegend is not False]
        assert shown and all(t.mode == "lines" or (t.marker.opacity is None or t.marker.opacity > 0) for t in shown)
    keys = {t.name for t in sample_fig.data if t.showlegend is not False}
    assert keys == {"marginal interval", "conditional interval", "Shapley value"}
    panel = shapley_panel(pipeline_result)
    slider = panel.children[1].children[0].children[0].children[0]
    slider.value = 0.3  # redraws from intervals_for_alpha without error
    assert slider.description == "alpha"


def test_masked_fast_path_equals_forward_with_mask(noisy_data):
    import torch

    from workbench.analyses.shapley import _embeddings, _masked_probs
    from workbench.training.trainer import Trainer, predict_proba

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
    from workbench.training.trainer import Trainer

    ds, splits = noisy_data
    model = Trainer(TrainConfig(epochs=1, progress=False, hidden=16, embed=8)).fit(ds, splits).model_
    kw = dict(value_method="masked", model=model, progress=False)
    exact = conformal_shapley(ds, splits, **kw)
    sampled = conformal_shapley(ds, splits, max_exact=1, n_permutations=2, **kw)
    assert sampled.estimator == "permutation(2)"
    np.testing.assert_allclose(sampled.values["phi"], exact.values["phi"], atol=1e-12)


# -- issue 14 items 1-6 and issue 15 item 17 ---------------------------------------------------------
def _closed_form_games(m: int, seed: int = 0) -> np.ndarray:
    """Three cheap games on ``m`` players (rows) over all ``2^m`` coalitions: S-shaped, weighted
    voting (threshold) and concave; their exact Shapley values come from full enumeration."""
    masks = all_coalitions(m).astype(float)
    w = np.random.default_rng(seed).uniform(0.5, 2.0, m)
    s = masks @ w
    return np.stack([1 / (1 + np.exp(-3 * (s - w.sum() / 2))), (s >= 0.5 * w.sum()).astype(float), np.sqrt(s)])


def test_monte_carlo_standard_error_covers_at_13_players():
    """14.2: +-1.96 se from the K/2 antithetic pair means covers the exact value 0.92-0.98 of the
    time (sd/sqrt(K) over all K orders covered 0.80-0.83 for the S-shaped and voting games)."""
    m, k = 13, 400
    games = _closed_form_games(m)
    exact = shapley_from_values(games)
    coal = all_coalitions(m)
    hits = []
    for seed in range(300):
        perms = sample_permutations(m, k, seed)
        phi, se = permutation_shapley(games, coal, perms)
        hits.append(np.abs(phi - exact) <= 1.96 * se)
    coverage = np.mean(hits, axis=(0, 2))  # per game
    assert np.all((coverage >= 0.92) & (coverage <= 0.98)), coverage
    with pytest.raises(ValueError, match="even"):
        sample_permutations(m, 5)


@pytest.mark.parametrize("m", [13, 16])
def test_more_than_12_modalities_runs_with_permutation_sampling(m):
    """14.1: selection and the coalition table work for any M (subsets the rules need are evaluated)."""
    import torch

    from workbench.training.trainer import Trainer

    ds = imbalance(n=500, n_classes=2, dims=[2] * m, snr=[2.0, 1.0] + [0.0] * (m - 2), seed=m)
    splits = ds.split(seed=0)
    torch.manual_seed(0)
    model = Trainer(TrainConfig(epochs=2, progress=False, hidden=8, embed=4)).fit(ds, splits).model_
    res = conformal_shapley(ds, splits, value_method="masked", model=model, n_permutations=10, n_pca=2,
                            progress=False)
    assert res.estimator == "permutation(10)"
    assert set(res.selection["q"]) == set(range(1, m + 1))
    assert set(res.selection["rule"]) == {"conformal", "greedy", "all"}
    # every subset the conformal rule chose has a coalition row (it was evaluated)
    chosen = set(res.selected["subset"])
    assert chosen <= set(res.coalitions["coalition"])
    assert (res.values["phi_se"] >= 0).all() and np.isfinite(res.values["phi_se"]).all()


def _gated_game(n: int, seed: int, mu: float = 1.3, spurious: float = 0.15):
    """Note T6 as a game: m1 carries the label where z > 0, m2 where z <= 0, m3 is noise.

    Coalition predictors are the Bayes logits of the members' evidence (each knows z) plus a
    small spurious weight on uninformative evidence, as a finite-sample fit has. Returns the
    features Omega = (z, 1{z > 0}), the exact per-sample Shapley values, the right modality
    and the per-coalition correctness.
    """
    rng = np.random.default_rng(seed)
    z = rng.uniform(-1, 1, n)
    sign = 2 * rng.integers(0, 2, n) - 1
    on = np.stack([z > 0, z <= 0, np.zeros(n, bool)], 1)
    x = sign[:, None] * mu * on + rng.standard_normal((n, 3))
    w = np.where(on, 2 * mu, spurious)
    masks = all_coalitions(3)
    logit = (w * x) @ masks.T.astype(float)  # (n, 8)
    values = -np.logaddexp(0, -sign[:, None] * logit) + np.log(2)  # log p_S(y) - log prior
    return np.column_stack([z, z > 0]).astype(float), shapley_from_values(values), np.where(z > 0, 0, 1), \
        sign[:, None] * logit > 0


def test_gated_selection_picks_the_right_modality():
    """14.3 / note T6 at q = 1: the default (upper-bound) rule picks the informative modality for
    >= 90% of test points, predicts near the per-point oracle and beats any fixed modality; the
    lower-bound rule falls for the noise modality whose interval hugs 0."""
    from workbench.analyses.shapley import select_modalities

    feats, phi, right, correct = _gated_game(1400, seed=0)
    cal, test = slice(0, 400), slice(400, None)
    bounds = [conditional_interval(feats[cal], phi[cal, j], feats[test], 0.1) for j in range(3)]
    lower, upper = np.column_stack([b[0] for b in bounds]), np.column_stack([b[1] for b in bounds])
    chosen = select_modalities(lower, upper, 1)  # default rule
    picked = chosen.argmax(1)
    assert np.mean(picked == right[test]) >= 0.9
    key = chosen.astype(int) @ (1 << np.arange(3))  # column of the chosen coalition
    acc = correct[test][np.arange(len(key)), key].mean()
    oracle = correct[test][np.arange(len(key)), np.where(right[test] == 0, 1, 2)].mean()
    fixed = max(correct[test][:, 1].mean(), correct[test][:, 2].mean())
    assert acc >= oracle - 0.02 and acc > fixed + 0.15, (acc, oracle, fixed)
    assert np.mean(select_modalities(lower, upper, 1, "lower").argmax(1) == right[test]) < 0.5
    with pytest.raises(ValueError, match="selection rule"):
        select_modalities(lower, upper, 1, "largest")


@pytest.fixture(scope="module")
def noise_default_result():
    ds = imbalance(n=600, dims=[8, 8, 8], snr=[3.0, 1.5, 0.0], names=["strong", "medium", "noise"], seed=1)
    return conformal_shapley(ds, ds.split(seed=0, train=0.5, calib=0.3, test=0.2), progress=False)


def test_noise_modality_at_default_settings(noise_default_result):
    """14.3 and 14.5 on synthetic-imbalance with a zero-SNR modality, default settings (early stopping):
    the noise modality is never among the q = 2 chosen and its mean-value t-interval contains 0."""
    res = noise_default_result
    assert res.selection_rule == "upper"
    assert not res.selected.query("q == 2")["subset"].str.contains("noise").any()
    noise = res.modalities.set_index("modality").loc["noise"]
    assert noise["mean_ci_lower"] <= 0 <= noise["mean_ci_upper"] and noise["p_value"] > 0.05
    assert np.isfinite(res.cond_coverage_error) and (res.values.query("split == 'test'")["cond_coverage_error"]
                                                    == res.cond_coverage_error).all()


def test_conditional_interval_refuses_too_few_calibration_points():
    """14.4: with 5 or 12 calibration points for 4 features the naive interval is unbounded
    (it was finite and covered 0% / 53%); the stated coverage error is reported."""
    from workbench.stats.conformal import conditional_coverage_error

    rng = np.random.default_rng(0)
    for c in (5, 12):
        f, s = rng.normal(size=(c, 4)), rng.normal(size=c)
        with pytest.warns(UserWarning, match="too few"):
            lo, hi = conditional_interval(f, s, rng.normal(size=(3, 4)), 0.1)
        assert np.all(lo == -np.inf) and np.all(hi == np.inf)
        assert conditional_coverage_error(c, 4) >= 0.1
    assert conditional_coverage_error(199, 4) == pytest.approx(0.05)
    lo, hi = conditional_interval(rng.normal(size=(300, 4)), rng.normal(size=300), rng.normal(size=(3, 4)), 0.1)
    assert np.all(np.isfinite(lo)) and np.all(lo < hi)


def test_retrain_cost_is_estimated_and_refused_before_training(monkeypatch):
    """14.6: 12 modalities x 8 dims retrained (4095 models) is estimated and refused at once, with a
    suggestion; the estimate's parameter count is a real model's; a small budget chunks training."""
    import workbench.training.stacked as batched
    from workbench.models.multimodal import build_model
    from workbench.training.stacked import estimate_coalition_cost

    def no_training(*a, **k):
        raise AssertionError("trained before the cost check")

    monkeypatch.setattr(batched, "train_stacked", no_training)
    ds = imbalance(n=600, dims=[8] * 12, snr=[1.0] * 12, seed=0)
    splits = ds.split(seed=0)
    with pytest.raises(ValueError, match="value_method='masked'.*max_exact"):
        conformal_shapley(ds, splits, value_method="retrain", progress=False)
    cfg = TrainConfig(epochs=30)
    cost = estimate_coalition_cost(ds, [("m0",), tuple(ds.modality_names)], 300, cfg, memory_budget_gb=1e-3)
    model = build_model(ds.shapes, ds.kinds, ds.n_classes)
    full = sum(p.numel() for p in model.parameters())
    one_encoder = sum(p.numel() for p in model.encoders["m0"].parameters())
    assert cost.params_per_model == (2 * full - 11 * one_encoder) // 2  # mean over the two coalitions
    assert cost.chunk_size == max(1, int(1e-3 * 2**30) // cost.bytes_per_model)
    doubled = estimate_coalition_cost(ds, [("m0",), tuple(ds.modality_names)], 300, TrainConfig(epochs=60))
    assert doubled.seconds == pytest.approx(2 * cost.seconds)
    monkeypatch.undo()
    small = imbalance(n=200, dims=[3, 3], snr=[2.0, 0.0], seed=0)
    with pytest.warns(UserWarning, match="chunks"):
        res = conformal_shapley(small, small.split(seed=0, train=0.4, calib=0.4, test=0.2), value_method="retrain",
                                epochs=3, memory_budget_gb=1e-4, n_pca=1, progress=False)
    assert len(res.coalitions) == 2 * 4


@pytest.mark.parametrize("bad, match", [
    (dict(alpha=1.5), "alpha"), (dict(alpha=0), "alpha"), (dict(alpha=float("nan")), "alpha"),
    (dict(alpha="0.1"), "alpha"), (dict(selection_rule="best"), "selection_rule"),
    (dict(n_permutations=7), "n_permutations"), (dict(n_pca=0), "n_pca"), (dict(epochs=0), "epochs"),
    (dict(patience=-1), "patience"), (dict(value_method="shap"), "value_method"),
    (dict(max_retrain_seconds=-1), "max_retrain_seconds"), (dict(value_method="retrain", model=object()), "model"),
])
def test_bad_arguments_raise_before_any_training(noisy_data, monkeypatch, bad, match):
    """15.17: every argument is checked before any coalition model is trained."""
    import workbench.analyses.shapley as shapley

    def no_training(*a, **k):
        raise AssertionError("trained before validating the arguments")

    monkeypatch.setattr(shapley, "coalition_values", no_training)
    monkeypatch.setattr(shapley, "train_dropout_model", no_training)
    ds, splits = noisy_data
    with pytest.raises(ValueError, match=match):
        conformal_shapley(ds, splits, progress=False, **bad)
