"""Balancing strategies: known answers (T-B1..B4, T-C1, T-C2, T-D1, T-D2 of methods/imbalance.md)."""

from __future__ import annotations

import math

import pytest
import torch

from workbench.balancing.common import modulated_tensors
from workbench.balancing.gmm_adaptive import gap_values
from workbench.balancing.mcr import mipd_regularizer, permutation_jsd, permuted_jsd
from workbench.balancing.mlb import mlb_coefficients
from workbench.balancing.ogm_ge import OGMGE, ogm_coefficient, ogm_coefficients
from workbench.models import ModalitySpec, MultimodalModel
from workbench.strategy import Batch, TrainContext, make_strategy
from workbench.trainer import TrainConfig


def _setup(hidden=16, dim=6, n=32, seed=0, modalities=("a", "b")):
    torch.manual_seed(seed)
    model = MultimodalModel({m: ModalitySpec("vector", (dim,)) for m in modalities}, 3, fusion="concat",
                            hidden=hidden, embed=8, dropout=0.0)
    x = {m: torch.randn(n, dim) for m in modalities}
    x["a"] = x["a"] * 3  # make modality a dominate the batch scores after a few steps
    y = torch.randint(0, 3, (n,))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ctx = TrainContext(model, opt, x, y, None, None, torch.device("cpu"), TrainConfig(epochs=3))
    return model, ctx, Batch(x, y, torch.arange(n))


def _backward(strategy, ctx, batch):
    out = ctx.model(batch.x, detach_unimodal=strategy.detach_unimodal)
    ctx.optimizer.zero_grad()
    strategy.loss(ctx, batch, out).backward()
    return out, {name: p.grad.clone() for name, p in ctx.model.named_parameters() if p.grad is not None}


def test_ogm_coefficient_table():  # T-B1
    for alpha in (0.1, 0.8):
        assert ogm_coefficient(1.0, alpha) == 1.0
        assert ogm_coefficient(1.0 + 1e-9, alpha) == pytest.approx(1 - math.tanh(alpha), abs=1e-8)
        assert ogm_coefficient(0.3, alpha) == 1.0
    assert 1 - math.tanh(0.1) == pytest.approx(0.90, abs=0.005) and 1 - math.tanh(0.8) == pytest.approx(0.34, abs=0.005)
    k, rho = ogm_coefficients({"a": 40.0, "b": 10.0, "c": 30.0}, alpha=0.5)
    assert rho["a"] == pytest.approx(2.0) and k["a"] == pytest.approx(1 - math.tanh(1.0))
    assert k["b"] == 1.0 and rho["c"] == pytest.approx(30 / 25)


def test_ogm_scales_only_dominant_encoder_weights():  # T-B2
    model, ctx, batch = _setup()
    strat = OGMGE(alpha=0.8, ge=False, scale="grad")
    strat.setup(ctx)
    out, raw = _backward(strat, ctx, batch)
    k, _ = strat.batch_coefficients(ctx, batch, out)
    dominant = max(k, key=lambda m: -k[m])
    assert k[dominant] < 1 and min(k.values()) < 1 == max(k.values())
    strat.after_backward(ctx, batch, out)
    scaled = {id(p) for p in modulated_tensors(model, dominant)}
    for name, p in model.named_parameters():
        if p.grad is None:
            continue
        if id(p) in scaled:
            torch.testing.assert_close(p.grad, raw[name] * k[dominant])
        else:
            assert torch.equal(p.grad, raw[name]), name


def test_ge_noise_has_the_raw_gradient_std():  # T-B3
    model, ctx, _ = _setup(hidden=1000, dim=1000, n=4)
    strat = OGMGE(ge=True, scale="grad")
    strat.setup(ctx)
    big = model.encoders["a"].net[1].weight
    assert big.numel() == 10**6
    torch.manual_seed(1)
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 0.01
    raw = big.grad.clone()
    strat.modulate(ctx, {"a": 0.3, "b": 1.0})
    resid = big.grad - 0.3 * raw
    assert resid.std().item() == pytest.approx(raw.std().item(), rel=0.02)


def test_ogm_changes_nothing_outside_the_window():  # T-B4
    model, ctx, batch = _setup()
    strat = OGMGE(alpha=0.8, modulation_starts=1, modulation_ends=2)
    strat.setup(ctx)
    for epoch in (0, 3):
        ctx.epoch = epoch
        out, raw = _backward(strat, ctx, batch)
        strat.after_backward(ctx, batch, out)
        for name, p in model.named_parameters():
            if p.grad is not None:
                assert torch.equal(p.grad, raw[name])
        assert all(g["lr"] == g["base_lr"] for g in ctx.optimizer.param_groups if "base_lr" in g)


def test_mlb_coefficients():  # T-C1
    assert mlb_coefficients({"a": 0.6, "b": 0.6}) == {"a": 1.0, "b": 1.0}
    k = mlb_coefficients({"a": 0.9, "b": 0.3}, alpha=0.8, beta_max=2.0)
    assert 1 < k["b"] < 2 and 0 < k["a"] < 1
    k10 = mlb_coefficients({"a": 0.9, "b": 0.3}, alpha=0.8, beta_max=10.0)
    assert 2 < k10["b"] < 10 and k10["a"] == pytest.approx(k["a"])
    k3 = mlb_coefficients({"a": 0.9, "b": 0.3, "c": 0.6}, alpha=0.5)
    assert k3["c"] == pytest.approx(1 + math.tanh(0.5 * ((0.9 + 0.3) / 2 / 0.6 - 1)))


def test_mlb_phases_out_when_heads_fit_the_training_set():  # T-C2
    from workbench import train

    run = train("synthetic-imbalance", epochs=25, strategy="mlb", dataset_params={"n": 200, "snr": [4.0, 3.0]},
                save=False, progress=False, batch_size=32, lr=5e-3)
    last = run.history.iloc[-1]
    assert abs(last["mlb_k_strong"] - 1) < 0.05 and abs(last["mlb_k_weak"] - 1) < 0.05
    first = run.history.iloc[0]
    assert abs(first["mlb_k_weak"] - 1) > abs(last["mlb_k_weak"] - 1)


def test_mcr_routing_and_game_gradients():  # T-D2
    model, ctx, batch = _setup(modalities=("a", "b", "c"))
    emb = model.encode(batch.x)
    perms = torch.argsort(torch.rand(4, len(batch.y)), 1)
    enc = {m: list(model.encoders[m].parameters()) for m in model.modalities}

    def grads(loss, m):
        return torch.autograd.grad(loss, enc[m], retain_graph=True, allow_unused=True)

    j = permuted_jsd(model, emb, "b", perms, grad_to="a")
    for other in ("b", "c"):
        assert all(g is None or torch.all(g == 0) for g in grads(j, other))
    for game_k in (-1.0, 0.0, 1.0):
        reg, _ = mipd_regularizer(model, emb, perms, k=game_k, lam=0.1)
        for m in model.modalities:
            expect = [0.1 * -g for g in grads(permuted_jsd(model, emb, m, perms, grad_to=m), m)]
            for n in model.modalities:
                if n != m:
                    extra = grads(permuted_jsd(model, emb, n, perms, grad_to=m), m)
                    expect = [e + 0.1 * game_k * -g for e, g in zip(expect, extra, strict=True)]
            for got, want in zip(grads(reg, m), expect, strict=True):
                torch.testing.assert_close(got, want)


def test_permutation_jsd_finds_the_informative_modality():  # T-D1
    from workbench import load_dataset, train

    ds = load_dataset("synthetic-imbalance", n=600, snr=[3.0, 0.0])
    run = train(ds, epochs=10, save=False, progress=False)
    test = torch.as_tensor(run.splits.test)
    jsd = permutation_jsd(run.model, {m: t[test] for m, t in ds.modalities.items()})
    assert jsd["weak"] < 0.01 and jsd["strong"] > 0.1


def test_gap_values_route_gradient_to_the_weaker_score():
    a = torch.tensor([0.9, 0.2], requires_grad=True)
    b = torch.tensor([0.5, 0.6], requires_grad=True)
    gap_values({"a": a, "b": b}, stop_grad_strong=True).abs().sum().backward()
    assert a.grad.tolist() == [0.0, -1.0] and b.grad.tolist() == [-1.0, 0.0]
    three = gap_values({"a": torch.tensor([0.9]), "b": torch.tensor([0.2]), "c": torch.tensor([0.5])})
    assert three.item() == pytest.approx(0.7)


@pytest.mark.parametrize("name", ["gmm_adaptive", "ogm_ge", "mlb", "mcr", "joint"])
def test_every_strategy_trains_with_three_modalities(name):
    from workbench import train

    params = {"num_perms": 2} if name == "mcr" else {"warmup_epochs": 1} if name == "gmm_adaptive" else {}
    run = train("synthetic-missing", epochs=2, strategy=name, strategy_params=params,
                dataset_params={"n": 240}, save=False, progress=False)
    assert run.metrics["test"]["fused"] > 0.4
    with pytest.raises(ValueError, match="bad parameters"):
        make_strategy(name, not_a_parameter=1)


# -- item 11: MLB beta_max <= 1, GMM fine-tune honours unimodal_weight ---------------------------------
def test_mlb_accepts_beta_max_at_most_one():
    strat = make_strategy("mlb", beta_max=0.5)  # the authors' UCF run (run.sh: tanh_mode_beta 0.5)
    assert strat.beta_max == 0.5
    k = mlb_coefficients({"a": 0.9, "b": 0.3}, alpha=2.0, beta_max=0.5)
    r_b = 0.9 / 0.3
    assert k["b"] == pytest.approx(1 - 0.5 * math.tanh(2.0 * (r_b - 1)))  # weak modality slowed to (0.5, 1)
    assert 0.5 < k["b"] < 1 and 0 < k["a"] < 1
    assert mlb_coefficients({"a": 0.9, "b": 0.3}, alpha=2.0, beta_max=1.0)["b"] == 1.0
    with pytest.raises(ValueError, match="beta_max"):
        make_strategy("mlb", beta_max=0.0)


def test_gmm_finetune_stage_honours_unimodal_weight():
    import torch.nn.functional as F

    model, ctx, batch = _setup()
    losses = {}
    for w in (0.0, 1.0, 0.25):
        strat = make_strategy("gmm_adaptive", warmup_epochs=0, finetune_epochs=1, unimodal_weight=w)
        strat.setup(ctx)
        strat._phase = "finetune"
        strat._keep = (torch.arange(len(batch.y)) % 3 != 0).float()
        out = model(batch.x, detach_unimodal=strat.detach_unimodal)
        losses[w] = strat.loss(ctx, batch, out)
    keep = (torch.arange(len(batch.y)) % 3 != 0).float()
    fused = F.cross_entropy(out.logits, batch.y, reduction="none")
    uni = sum(F.cross_entropy(z, batch.y, reduction="none") for z in out.unimodal_logits.values())
    for w, got in losses.items():
        want = (keep * (fused + w * uni)).sum() / keep.sum()
        torch.testing.assert_close(got, want)


# -- item 13: the step mode is settled after the strategy's setup -----------------------------------------
def test_sgd_strategy_does_not_keep_the_cuda_graph_step():
    from workbench.fast_path import choose_step_mode
    from workbench.trainer import make_optimizer, settle_step_mode

    cuda = torch.device("cuda")  # a fake device: only its type is read
    joint_sgd = make_strategy("joint", optimizer="sgd")
    assert joint_sgd.graph_safe and choose_step_mode(cuda, joint_sgd, True)[0] == "graph"  # pre-setup decision
    model, ctx, _ = _setup()
    ctx.optimizer = make_optimizer(model.parameters(), lr=1e-3, weight_decay=0.0, capturable=True)
    ctx.config = TrainConfig(weight_decay=0.0)
    joint_sgd.setup(ctx)  # swaps in a (non-capturable) SGD
    assert isinstance(ctx.optimizer, torch.optim.SGD)
    mode, reason = settle_step_mode("graph", "whole step captured", ctx.optimizer)
    assert mode == "eager" and "SGD" in reason
    adam = make_optimizer(model.parameters(), lr=1e-3, weight_decay=0.0, capturable=True)  # joint with Adam
    assert settle_step_mode("graph", "whole step captured", adam) == ("graph", "whole step captured")
    assert settle_step_mode("eager", "no CUDA graph on cpu", ctx.optimizer)[0] == "eager"
