"""Heavier known answers of the theory lab (Lu 2023's example): rates and ratios at n = 4096."""

import numpy as np

from workbench.analyses.theory_lab import bayes_predictor, theory_lab


def test_generic_two_stage_mlp_rate():
    res = theory_lab(ns=[2 ** k for k in range(3, 12)], eps=[0.5], sigma_y=[0.1], learners=["mm_mlp"], seeds=5,
                     mlp_steps=500, n_test=2048, progress=False)
    slope = float(res.slopes["slope"].iloc[0])
    assert -1.2 <= slope <= -0.4


def test_ratios_at_4096():
    # the other half (eps = 0.5: uni_mlp and mm within a factor 2) is not a property of this
    # design; see test_no_heterogeneity_mm_sits_on_its_misspecification_floor and the module docstring
    res = theory_lab(ns=[4096], eps=[0.01], sigma_y=[0.0], learners=["mm", "uni_mlp"], seeds=5,
                     mlp_steps=800, n_test=4096, progress=False)
    r = res.ratios.set_index(["eps", "sigma_y"])["ratio"]
    assert r[(0.01, 0.0)] > 5  # heterogeneity + connection: multimodal far ahead
    assert np.isfinite(res.summary["excess_risk_ci_upper"]).all()


def test_no_heterogeneity_mm_sits_on_its_misspecification_floor():
    """Why "eps = 0.5: UNI-MLP and MM within a factor 2" is unreliable, and what holds instead.

    With sigma_y > 0 the multimodal learner's prediction sin(1/(theta_hat x)) is not E[z|x] (the
    noise in y smooths it): its excess risk at n = 4096 is the floor E_x (sin(1/(theta* x)) - E[z|x])^2,
    which depends on theta* alone and spans ~3 decades over theta* in [1, 2]. So the UNI/MM ratio
    is set by which theta* the seeds drew (5 seeds gave 0.7 on one draw and 5.2 on another). The
    unimodal ERM over the same induced class meets the same floor: that ratio is within a factor 2.
    """
    res = theory_lab(ns=[4096], eps=[0.5], sigma_y=[0.1], learners=["mm", "uni_erm"], seeds=30, grid=1024,
                     n_test=2048, progress=False)
    mm = res.runs[res.runs["learner"] == "mm"].sort_values("seed")
    x = 0.5 + 0.5 * (np.arange(2048) + 0.5) / 2048  # the lab's test grid
    theta = mm["theta"].to_numpy()
    floor = ((np.sin(1 / (theta[:, None] * x)) - bayes_predictor(x, theta, 0.1)) ** 2).mean(1)
    on_floor = mm["excess_risk"].to_numpy() / floor
    assert 0.8 < np.median(on_floor) < 1.25
    assert np.corrcoef(np.log(mm["excess_risk"]), np.log(floor))[0, 1] > 0.9
    assert floor.max() / floor.min() > 100  # theta* alone moves the multimodal risk by > 2 decades
    r = res.ratios.set_index("uni").loc["uni_erm"]
    assert 0.5 < r["ratio_ci_lower"] and r["ratio_ci_upper"] < 2  # same class, same floor: within a factor 2
