"""MultiFair pieces (methods/multifair.md section 10): surrogate AUC, B_m, hooks, no-op, robustness."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from workbench import load_dataset, train
from workbench.models.multimodal import ModalitySpec, MultimodalModel
from workbench.strategies.base import Batch, TrainContext, make_strategy
from workbench.strategies.multifair import (
    GroupReweight,
    MultiFair,
    balancing_factor,
    exact_auc,
    released_batch_factor,
    sample_weights,
    surrogate_auc,
)


# -- surrogate AUC --------------------------------------------------------------------------------
def test_surrogate_tracks_exact_auc_and_has_gradients():
    gen = torch.Generator().manual_seed(0)
    sur, exact = [], []
    for k in range(60):
        y = (torch.rand(64, generator=gen) < 0.4).long()
        margin = torch.randn(64, generator=gen) + (k / 20) * y  # from random to well separated
        logits = torch.stack([torch.zeros(64), margin], 1)
        sur.append(float(surrogate_auc(logits, y)))
        exact.append(roc_auc_score(y.numpy(), margin.numpy()))
    assert spearmanr(sur, exact).statistic > 0.9
    logits = torch.randn(32, 2, requires_grad=True)
    y = torch.arange(32) % 2
    surrogate_auc(logits, y).backward()
    assert logits.grad.abs().sum() > 0


def test_surrogate_range_and_neutral_cases():
    y = torch.tensor([0, 0, 1, 1])
    perfect = torch.tensor([[0.0, -20.0], [0.0, -20.0], [0.0, 20.0], [0.0, 20.0]])
    assert float(surrogate_auc(perfect, y)) == pytest.approx(1.0, abs=1e-6)
    assert float(surrogate_auc(torch.zeros(4, 2), y)) == pytest.approx(0.5)
    assert surrogate_auc(perfect, torch.ones(4, dtype=torch.long)) is None  # one class -> neutral
    three = torch.randn(30, 3)
    val = surrogate_auc(three, torch.arange(30) % 3)
    assert 0 < float(val) < 1


def test_exact_auc_matches_sklearn():
    s = torch.tensor([0.1, 0.4, 0.4, 0.8, 0.3])
    pos = torch.tensor([False, True, False, True, False])
    assert exact_auc(s, pos) == pytest.approx(roc_auc_score(pos.numpy(), s.numpy()))
    assert np.isnan(exact_auc(s, torch.ones(5, dtype=torch.bool)))


# -- balancing factor -----------------------------------------------------------------------------
def test_balancing_factor_properties():
    b = balancing_factor(torch.tensor([0.04, -0.01]))
    assert float(b.sum()) == pytest.approx(1.0) and b[0] < b[1]  # larger |dA| -> smaller B
    d = torch.tensor([0.05, 0.01, -0.02])
    for perm in itertools.permutations(range(3)):
        assert torch.allclose(balancing_factor(d[list(perm)]), balancing_factor(d)[list(perm)])
    assert torch.equal(balancing_factor(torch.zeros(2)), torch.ones(2))
    total = 0.08
    assert torch.allclose(balancing_factor(d), torch.tensor([(total - 0.05), (total - 0.01), (total - 0.02)]) / total)


# -- group factors --------------------------------------------------------------------------------
def test_group_factors_released_and_per_sample():
    ema = torch.tensor([[0.9, 0.7], [0.8, 0.8]])
    f = released_batch_factor(ema, torch.tensor([16, 16]), gamma=0.3, tau=0.04)
    assert torch.allclose(f, torch.ones(2))  # exactly 1 on a balanced batch (note 3c)
    f = released_batch_factor(ema[:1], torch.tensor([40, 60]), gamma=0.3, tau=0.04)
    assert float(f) == pytest.approx(1 + 7.5 * (0.5 - 0.4) * (0.9 - 0.7))  # the note's closed form
    codes = torch.tensor([0, 0, 0, 1])
    w = sample_weights(codes, torch.tensor([0.9, 0.7]), gamma=0.3, tau=0.04)
    assert w[3] > 1 > w[0] and float(w.mean()) == pytest.approx(1.0)
    assert torch.allclose(sample_weights(codes, torch.tensor([0.8, 0.8]), 0.3, 0.04), torch.ones(4))


# -- hooks on a real batch ------------------------------------------------------------------------
def _setup(strategy: MultiFair, n_groups: int = 2, fusion: str = "concat"):
    torch.manual_seed(0)
    model = MultimodalModel({"a": ModalitySpec("vector", (6,)), "b": ModalitySpec("vector", (4,))}, 2, fusion=fusion)
    x = {"a": torch.randn(48, 6), "b": torch.randn(48, 4)}
    y = torch.arange(48) % 2
    groups = {"g": torch.arange(48) % n_groups, "h": (torch.arange(48) // 24)}
    opt = torch.optim.Adam(model.parameters())
    ctx = TrainContext(model, opt, x, y, None, groups, torch.device("cpu"), None)
    strategy.setup(ctx)
    batch = Batch(x, y, torch.arange(48), None, groups)
    return ctx, batch


def _grads(ctx, strategy, batch, *, hook: bool):
    """Gradients after backward (and, with ``hook``, also after the strategy's hook)."""
    model = ctx.model
    model.eval()  # no dropout: repeated calls see the same function
    model.zero_grad()
    out = model(batch.x, detach_unimodal=strategy.detach_unimodal)
    strategy.loss(ctx, batch, out).backward()
    raw = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
    if not hook:
        return raw
    strategy.after_backward(ctx, batch, out)
    return raw, {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}


def test_gradient_hook_scales_encoders_only():
    strat = MultiFair(clip_norm=None, lambda_gm=0.0)
    ctx, batch = _setup(strat)
    strat._prev_auc = torch.tensor([0.5, 0.5])  # so dA (and B) are non-trivial
    raw, hooked = _grads(ctx, strat, batch, hook=True)
    scales = strat._scales
    assert scales["a"] != pytest.approx(scales["b"])
    for k, g in raw.items():
        if k.startswith("encoders."):
            assert torch.allclose(hooked[k], g * scales[k.split(".")[1]], atol=1e-8), k
        else:
            assert torch.equal(hooked[k], g), k


def test_direction_term_is_live():
    grads = {}
    for lam in (0.0, 1.0):
        strat = MultiFair(lambda_gm=lam, clip_norm=None, group_level=False)
        ctx, batch = _setup(strat)
        strat._prev_auc = torch.tensor([0.3, 0.6])
        grads[lam] = _grads(ctx, strat, batch, hook=False)
    enc = [k for k in grads[0.0] if k.startswith("encoders.")]
    assert any(not torch.allclose(grads[0.0][k], grads[1.0][k]) for k in enc)
    assert not torch.allclose(grads[0.0]["fusion_head.weight"], grads[1.0]["fusion_head.weight"])


# -- training-level ---------------------------------------------------------------------------------
def test_noop_multifair_is_bit_identical_to_naive(tmp_path):
    kw = dict(epochs=2, seed=3, dataset_params={"n": 400}, save=False, progress=False)
    base = train("synthetic-group-noise", **kw)
    noop = train("synthetic-group-noise", strategy="multifair", **kw,
                 strategy_params=dict(rho=1.0, modality_level=False, gamma=0.0, lambda_gm=0.0, beta=0.0,
                                      clip_norm=None))
    for k, v in base.model.state_dict().items():
        assert torch.equal(v, noop.model.state_dict()[k]), k


def test_robust_to_many_groups_missing_groups_and_small_batches():
    for group in ("g", ["g", "h"]):
        strat = MultiFair(group=group)
        ctx, batch = _setup(strat, n_groups=3)
        sel = batch.groups["g"] != 2  # one group absent from this batch
        small = Batch({m: v[sel][:8] for m, v in batch.x.items()}, batch.y[sel][:8], batch.idx[:8], None,
                      {k: v[sel][:8] for k, v in batch.groups.items()})
        for b in (batch, small):
            out = ctx.model(b.x, detach_unimodal=True)
            loss = strat.loss(ctx, b, out)
            loss.backward()
            strat.after_backward(ctx, b, out)
            assert torch.isfinite(loss)
            assert all(torch.isfinite(p.grad).all() for p in ctx.model.parameters() if p.grad is not None)
    assert strat._n_groups == 6  # 3 x 2 intersection cells


def test_registry_and_errors():
    assert isinstance(make_strategy("group_reweight"), GroupReweight)
    assert make_strategy("multifair", group_level=False).group_level is False
    ds = load_dataset("synthetic-imbalance", n=200)  # no groups
    with pytest.raises(ValueError, match="no group attributes"):
        train(ds, strategy="multifair", epochs=1, save=False, progress=False)
    with pytest.raises(ValueError, match="'sex'"):
        train("synthetic-group-noise", strategy="multifair", strategy_params={"group": "sex"}, epochs=1,
              dataset_params={"n": 200}, save=False, progress=False)
    run = train(ds, strategy="multifair", strategy_params={"group_level": False}, epochs=2, save=False, progress=False)
    assert {"mf_B_strong", "mf_B_weak", "mf_L_gm"} <= set(run.history.columns)


def test_gradient_clip_leaves_the_probe_heads_alone():  # issue 14 item 11
    strat = MultiFair(clip_norm=1e-3, lambda_gm=0.0, group_level=False)
    ctx, batch = _setup(strat)
    strat._prev_auc = torch.tensor([0.5, 0.5])
    raw, hooked = _grads(ctx, strat, batch, hook=True)
    scaled = {k: g * strat._scales[k.split(".")[1]] if k.startswith("encoders.") else g for k, g in raw.items()}
    clipped = [k for k in raw if not k.startswith("unimodal_heads.")]
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(scaled[k]) for k in clipped]))
    assert norm > 1e-3
    for k in raw:
        if k.startswith("unimodal_heads."):
            assert torch.equal(hooked[k], raw[k]), k  # probes: neither scaled nor clipped
        else:
            torch.testing.assert_close(hooked[k], scaled[k] * (1e-3 / (norm + 1e-6)))


def test_direction_switch_equals_lambda_zero():
    grads = {}
    for kw in ({"direction": False, "lambda_gm": 1.0}, {"lambda_gm": 0.0}):
        strat = MultiFair(clip_norm=None, group_level=False, **kw)
        ctx, batch = _setup(strat)
        strat._prev_auc = torch.tensor([0.3, 0.6])
        grads[len(grads)] = _grads(ctx, strat, batch, hook=False)
    for k in grads[0]:
        assert torch.equal(grads[0][k], grads[1][k]), k
