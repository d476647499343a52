"""Theory-lab figures draw the result's numbers and are found by result class."""

import numpy as np

from widgets.figures.theory import advantage_heatmap, report_figures
from widgets.registry import RESULT_FIGURES, lookup
from workbench.analyses.theory_lab import TheoryLabResult, theory_lab


def test_figures_and_registry():
    res = theory_lab(ns=[8, 32], eps=[0.5, 0.05], sigma_y=[0.0, 0.5], learners=["mm", "uni_erm"], seeds=3,
                     grid=256, n_test=512, progress=False)
    figs = report_figures(res)
    assert len(figs) == 3
    heat = advantage_heatmap(res, uni="uni_erm")
    r = res.ratios[(res.ratios["n"] == 32)].pivot(index="sigma_y", columns="eps", values="ratio")
    assert np.allclose(heat.data[0].z, np.log10(r.to_numpy()))
    assert lookup(RESULT_FIGURES, TheoryLabResult) == "widgets.figures.theory:report_figures"


def test_theory_figures_carry_captions():
    from widgets.figures.captions import caption_text

    res = theory_lab(ns=[8, 16], eps=[0.5], sigma_y=[0.0], learners=["mm", "uni_erm"], seeds=2, grid=64,
                     n_test=128, progress=False)
    texts = [caption_text(f) for f in report_figures(res)]
    assert "lower is better" in texts[0] and "95% t interval" in texts[0] and "2 seeds" in texts[0]
    assert "Above 1" in texts[1] and "sqrt(n)" in texts[1]
    assert "n=16" in texts[2] and "both conditions" in texts[2]
