"""ConFu's XOR claim (known answers): the fused pair retrieves b from (a, c) at the Bayes oracle,
pairwise CLIP stays at chance 1/2^d."""

from __future__ import annotations

import pytest

from workbench import load_dataset, train
from workbench.analyses.retrieval import xor_2to1_accuracy


def _accuracy(lam: float, p: float, seed: int = 0) -> tuple[float, float]:
    ds = load_dataset("xor-trimodal", n=4000, d=3, p=p, seed=seed)
    run = train(ds, task="alignment", task_params={"lam": lam, "dim": 32}, epochs=20, batch_size=256, lr=3e-3,
                hidden=64, embed=32, dropout=0.0, seed=seed, save=False, progress=False)
    return xor_2to1_accuracy(run.model, ds, run.splits.test), ds.ground_truth["oracle_2to1"]


def test_confu_reaches_the_oracle_and_clip_stays_at_chance():
    confu, oracle = _accuracy(0.5, 1.0)
    clip, _ = _accuracy(0.0, 1.0)
    assert confu >= oracle - 0.05
    assert clip <= 1 / 8 + 0.05


def test_confu_follows_the_oracle_as_p_rises():
    low, oracle_low = _accuracy(0.5, 0.0)
    mid, oracle_mid = _accuracy(0.5, 0.5)
    assert low == pytest.approx(oracle_low, abs=0.06) and mid == pytest.approx(oracle_mid, abs=0.08)
    assert low < mid
