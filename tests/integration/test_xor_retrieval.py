"""ConFu's XOR claim (known answers, the issue's evidence): the fused pair retrieves b from (a, c)
at the Bayes oracle p + (1 - p)/2^d, pairwise CLIP stays at chance 1/2^d, and the curve over p
rises with the oracle; plus Shapley of the query modalities on an XOR run (a and c matter only
together, so they share the pair's value equally)."""

from __future__ import annotations

import numpy as np
import pytest

from workbench import load_dataset, train
from workbench.analyses.retrieval import retrieval_shapley, xor_curve


@pytest.fixture(scope="module")
def curve():
    return xor_curve(ps=(0.0, 0.5, 1.0), seeds=2, progress=False)


def test_confu_reaches_the_oracle_and_clip_stays_at_chance(curve):
    c = curve.curve.set_index(["p", "method"])
    assert c.loc[(1.0, "ConFu"), "top1"] >= c.loc[(1.0, "ConFu"), "oracle"] - 0.05
    assert c.loc[(1.0, "CLIP"), "top1"] <= 1 / 8 + 0.05
    assert (curve.runs.query("method == 'CLIP'")["top1"] <= 1 / 8 + 0.05).all()


def test_confu_follows_the_oracle_as_p_rises_and_beats_clip_with_an_interval(curve):
    c = curve.curve.set_index(["p", "method"])
    for p, tol in [(0.0, 0.06), (0.5, 0.08)]:
        assert c.loc[(p, "ConFu"), "top1"] == pytest.approx(c.loc[(p, "ConFu"), "oracle"], abs=tol)
    assert c.loc[(0.0, "ConFu"), "top1"] < c.loc[(0.5, "ConFu"), "top1"] < c.loc[(1.0, "ConFu"), "top1"]
    d = curve.differences.set_index("p")
    assert d.loc[1.0, "difference_ci_lower"] > 0.5  # paired over seeds
    assert d.loc[0.0, "difference"] == pytest.approx(0.0, abs=0.06)  # nothing to find at p = 0


def test_the_xor_pair_shares_its_value_equally_in_retrieval_shapley():
    ds = load_dataset("xor-trimodal", n=4000, d=3, p=1.0, seed=0)
    run = train(ds, task="alignment", task_params={"lam": 0.5, "dim": 32}, epochs=20, batch_size=256, lr=3e-3,
                hidden=64, embed=32, dropout=0.0, seed=0, save=False, progress=False)
    res = retrieval_shapley(run, target="b")
    mods = res.modalities.set_index("modality")
    coal = res.coalitions.query("split == 'test'").set_index("coalition")
    # alone, a and c say nothing of b (all pairs independent); together they determine it
    assert abs(coal.loc["a", "value"]) < 0.3 and abs(coal.loc["c", "value"]) < 0.3
    assert coal.loc["a+c", "value"] > 1.0
    assert mods.loc["a", "mean"] == pytest.approx(mods.loc["c", "mean"], abs=0.15)
    assert mods.loc["a", "mean_ci_lower"] > 0 and mods.loc["c", "mean_ci_lower"] > 0
    assert res.efficiency_max_error < 1e-9
    test = res.values.query("split == 'test'")
    assert np.mean(test["covered"]) >= 0.85  # marginal conformal coverage at alpha = 0.1
