"""Heavier known answers of the theory lab (Lu 2023's example): rates and ratios at n = 4096."""

import numpy as np

from workbench.analyses.theory_lab import theory_lab


def test_generic_two_stage_mlp_rate():
    res = theory_lab(ns=[2 ** k for k in range(3, 12)], eps=[0.5], sigma_y=[0.1], learners=["mm_mlp"], seeds=5,
                     mlp_steps=500, n_test=2048, progress=False)
    slope = float(res.slopes["slope"].iloc[0])
    assert -1.2 <= slope <= -0.4


def test_ratios_at_4096():
    # the second half (eps = 0.5: ratio within a factor 2) does NOT hold robustly in this
    # design: at sigma_y = 0.1 the 5-seed ratio ranged 0.7 .. 5.2 between seed draws (see README)
    res = theory_lab(ns=[4096], eps=[0.01], sigma_y=[0.0], learners=["mm", "uni_mlp"], seeds=5,
                     mlp_steps=800, n_test=4096, progress=False)
    r = res.ratios.set_index(["eps", "sigma_y"])["ratio"]
    assert r[(0.01, 0.0)] > 5  # heterogeneity + connection: multimodal far ahead
    assert np.isfinite(res.summary["excess_risk_ci_upper"]).all()
