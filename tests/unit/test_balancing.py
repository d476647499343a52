"""Balancing strategies: known answers (T-B1..B4, T-C1, T-C2, T-D1, T-D2 of methods/imbalance.md)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from workbench.models.multimodal import ModalitySpec, MultimodalModel
from workbench.strategies.base import Batch, TrainContext, make_strategy
from workbench.strategies.common import modulated_tensors
from workbench.strategies.gmm_adaptive import gap_values
from workbench.strategies.mcr import (
    MCR,
    fuse_embeddings,
    mipd_regularizer,
    permutation_jsd,
    permuted_jsd,
    supervised_ntxent,
)
from workbench.strategies.mlb import mlb_coefficients
from workbench.strategies.ogm_ge import OGMGE, ogm_coefficient, ogm_coefficients
from workbench.training.trainer import TrainConfig


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
    ref = fuse_embeddings(model, emb).detach()  # routing is a property of the permuted branch

    def grads(loss, m):
        return torch.autograd.grad(loss, enc[m], retain_graph=True, allow_unused=True)

    j = permuted_jsd(model, emb, "b", perms, grad_to="a", reference=ref)
    for other in ("b", "c"):
        assert all(g is None or torch.all(g == 0) for g in grads(j, other))
    for game_k in (-1.0, 0.0, 1.0):
        reg, _ = mipd_regularizer(model, emb, perms, k=game_k, lam=0.1, reference=ref)
        for m in model.modalities:
            expect = [0.1 * -g for g in grads(permuted_jsd(model, emb, m, perms, grad_to=m, reference=ref), m)]
            for n in model.modalities:
                if n != m:
                    extra = grads(permuted_jsd(model, emb, n, perms, grad_to=m, reference=ref), m)
                    expect = [e + 0.1 * game_k * -g for e, g in zip(expect, extra, strict=True)]
            for got, want in zip(grads(reg, m), expect, strict=True):
                torch.testing.assert_close(got, want)


# -- item 10: MCR against a re-implementation of the authors' step ----------------------------------------
def _authors_js_divergence(net_1_logits, net_2_logits):
    # Bias_Infusion_MCR.get_perturbed_gradients.js_divergence: clamped probabilities, kl_div batchmean
    p1 = F.softmax(torch.clamp(net_1_logits, -1e7, 1e7), dim=1)
    p2 = F.softmax(torch.clamp(net_2_logits, -1e7, 1e7), dim=1)
    log_m = torch.clamp(0.5 * (p1 + p2), 1e-20, 1).log()
    loss = F.kl_div(log_m, torch.clamp(p1, 1e-20, 1), reduction="batchmean")
    loss = loss + F.kl_div(log_m, torch.clamp(p2, 1e-20, 1), reduction="batchmean")
    return 0.5 * loss


def _pml_ntxent(z, labels, temperature):
    # pytorch-metric-learning NTXentLoss(temperature) with CosineSimilarity and MeanReducer:
    # all (anchor, positive) index pairs, each against its anchor's negatives, max-stabilised
    z = F.normalize(z, p=2, dim=1)
    sim = z @ z.T
    same = labels[:, None] == labels[None, :]
    a1, p = torch.where(same & ~torch.eye(len(z), dtype=torch.bool))
    a2, n = torch.where(~same)
    pos = sim[a1, p].unsqueeze(1) / temperature
    neg = sim[a2, n] / temperature
    n_per_p = (a2.unsqueeze(0) == a1.unsqueeze(1)).float()
    neg = (neg * n_per_p).masked_fill(n_per_p == 0, float("-inf"))
    max_val = torch.max(pos, torch.max(neg, dim=1, keepdim=True)[0]).detach()
    numerator = torch.exp(pos - max_val).squeeze(1)
    denominator = torch.sum(torch.exp(neg - max_val), dim=1) + numerator
    return -torch.log(numerator / denominator + torch.finfo(z.dtype).tiny).mean()


def _authors_mcr_loss(model, x, y, perms, *, lam, regby, contr_coeff, multil, temperature=0.5):
    """MCR_Model.forward (cls_type linear, shufflegradmulti) + Bias_Infusion_MCR.before_backward,
    two modalities (enc_0 = a, enc_1 = b); the concat head's blocks are fc_0_lin / fc_1_lin, its
    bias bias_lin (added as bias_lin / 2 to each part)."""
    torch.manual_seed(5)  # the same dropout draw as the strategy's main pass
    model.train()
    enc = lambda m: model.encoders[m](model.standardize(m, x[m]))  # noqa: E731
    a, v = enc("a"), enc("b")
    e = a.shape[1]
    w0, w1, bias = model.fusion_head.weight[:, :e], model.fusion_head.weight[:, e:], model.fusion_head.bias
    pred_aa, pred_vv = model.unimodal_heads["a"](a), model.unimodal_heads["b"](v)

    def forward_main(fa, fv, detach_a=False, detach_v=False):
        pred_a, pred_v = torch.matmul(fa, w0.T), torch.matmul(fv, w1.T)
        if detach_a:
            pred_a = pred_a.detach()
        if detach_v:
            pred_v = pred_v.detach()
        return (pred_a + bias / 2) + (pred_v + bias / 2)

    pred = forward_main(a, v)
    model.eval()  # shuffle_data: features again, in eval mode
    a2, v2 = enc("a"), enc("b")
    model.train()
    sa = torch.cat([a2[i] for i in perms])
    sv = torch.cat([v2[i] for i in perms])
    na = torch.cat([a2 for _ in perms])
    nv = torch.cat([v2 for _ in perms])
    n_pred = torch.cat([pred for _ in perms])
    jsd = lambda q: _authors_js_divergence(q, n_pred)  # noqa: E731
    enc0_p0, enc1_p0 = jsd(forward_main(sa, nv, detach_v=True)), jsd(forward_main(sa, nv, detach_a=True))
    enc1_p1, enc0_p1 = jsd(forward_main(na, sv, detach_a=True)), jsd(forward_main(na, sv, detach_v=True))
    all_p0, all_p1 = jsd(forward_main(sa, nv)), jsd(forward_main(na, sv))
    if regby == "greedy":
        reg = lam * (-enc0_p0 + enc1_p0 - enc1_p1 + enc0_p1)
    elif regby == "ind":
        reg = lam * (-enc0_p0 - enc1_p1)
    else:
        reg = lam * (-all_p0 - all_p1)
    cca = _pml_ntxent(torch.cat([a, v]), torch.cat([y, y]), temperature)
    ce = F.cross_entropy
    return ce(pred, y) + multil * (ce(pred_aa, y) + ce(pred_vv, y)) + reg + contr_coeff * cca


@pytest.mark.parametrize("game, regby", [("greedy", "greedy"), ("independent", "ind"), ("collaborative", "colab")])
def test_mcr_gradients_equal_the_authors_step(game, regby):
    torch.manual_seed(0)
    model = MultimodalModel({"a": ModalitySpec("vector", (6,)), "b": ModalitySpec("vector", (5,))}, 3,
                            fusion="concat", hidden=16, embed=8, dropout=0.2)
    x = {"a": torch.randn(24, 6).double() * 2, "b": torch.randn(24, 5).double()}
    y = torch.arange(24) % 3
    model.double()
    perms = torch.argsort(torch.rand(5, 24), 1)
    strat = MCR(lam=0.3, num_perms=5, game=game, contrastive_weight=0.7, unimodal_weight=0.01)
    strat._perms = lambda b, device: perms
    ctx = TrainContext(model, torch.optim.SGD(model.parameters(), lr=0.1), x, y, None, None, torch.device("cpu"),
                       TrainConfig())
    strat.setup(ctx)

    def grads(loss):
        model.zero_grad()
        loss.backward()
        return {k: p.grad.clone() for k, p in model.named_parameters()}

    torch.manual_seed(5)
    model.train()
    out = model(x, detach_unimodal=strat.detach_unimodal)
    ours = grads(strat.loss(ctx, Batch(x, y, torch.arange(24)), out))
    theirs = grads(_authors_mcr_loss(model, x, y, perms, lam=0.3, regby=regby, contr_coeff=0.7, multil=0.01))
    for k in theirs:
        torch.testing.assert_close(ours[k], theirs[k], rtol=0, atol=1e-6, msg=k)
    assert ours["fusion_head.weight"].abs().sum() > 0
    # the regulariser alone reaches the fusion head (the old code's gradients cancelled there)
    reg, _ = mipd_regularizer(model, model.encode(x), perms, k=-1.0, lam=1.0, reference=model(x).logits)
    (g_head,) = torch.autograd.grad(reg, model.fusion_head.weight)
    assert g_head.abs().max() > 1e-6


def test_supervised_ntxent_has_within_modality_pairs():
    gen = torch.Generator().manual_seed(1)
    za, zb = torch.randn(10, 4, generator=gen), torch.randn(10, 4, generator=gen)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    got = supervised_ntxent([za, zb], y, 0.5)
    torch.testing.assert_close(got, _pml_ntxent(torch.cat([za, zb]), torch.cat([y, y]), 0.5))
    zc = torch.randn(10, 4, generator=gen)
    torch.testing.assert_close(supervised_ntxent([za, zb, zc], y, 0.5),
                               _pml_ntxent(torch.cat([za, zb, zc]), torch.cat([y, y, y]), 0.5))


def test_mcr_pretraining_fits_each_encoder_alone():
    from workbench import train

    run = train("synthetic-imbalance", epochs=1, strategy="mcr", dataset_params={"n": 300},
                strategy_params={"num_perms": 2, "pretrain_epochs": 5}, save=False, progress=False)
    first = run.history.iloc[0]
    assert first["mcr_pretrain_acc_strong"] > 0.8  # a unimodal model of the strong modality


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
    from workbench.training.optim import make_optimizer
    from workbench.training.steps import choose_step_mode
    from workbench.training.trainer import settle_step_mode

    cuda = torch.device("cuda")  # a fake device: only its type is read
    joint_sgd = make_strategy("joint")
    assert joint_sgd.graph_safe and choose_step_mode(cuda, joint_sgd, True)[0] == "graph"  # pre-setup decision
    model, ctx, _ = _setup()
    ctx.optimizer = make_optimizer(model.parameters(), lr=1e-3, weight_decay=0.0, capturable=True)
    ctx.config = TrainConfig(weight_decay=0.0)
    # a setup that swaps in a (non-capturable) SGD, as the strategies' optimizer overrides once did
    ctx.optimizer = make_optimizer(model.parameters(), lr=0.02, weight_decay=0.0, kind="sgd")
    assert isinstance(ctx.optimizer, torch.optim.SGD)
    mode, reason = settle_step_mode("graph", "whole step captured", ctx.optimizer)
    assert mode == "eager" and "SGD" in reason
    adam = make_optimizer(model.parameters(), lr=1e-3, weight_decay=0.0, capturable=True)  # joint with Adam
    assert settle_step_mode("graph", "whole step captured", adam) == ("graph", "whole step captured")
    assert settle_step_mode("eager", "no CUDA graph on cpu", ctx.optimizer)[0] == "eager"


# -- the benchmark: paired differences and ablations --------------------------------------------------------
def test_paired_differences_equal_a_hand_computation():
    import numpy as np
    import pandas as pd
    from scipy import stats

    from workbench.analyses.imbalance_benchmark import paired_differences, paired_summary

    rng = np.random.default_rng(0)
    rows = []
    for seed in range(6):
        for method in ("naive", "mlb", "multi_loss", "ensemble"):
            if method == "mlb" and seed == 5:
                continue  # not a shared seed: left out of every mlb comparison
            models = [("fused", "fused")] if method == "ensemble" else [("fused", "fused"), ("weak", "probe")]
            for model, kind in models:
                rows.append({"dataset": "d", "method": method, "seed": seed, "model": model, "kind": kind,
                             "accuracy": float(rng.uniform(0.4, 0.9))})
    scores = pd.DataFrame(rows)
    got = paired_differences(scores, "mlb", "naive").set_index("model")
    for model in ("fused", "weak"):
        a = scores.query("method == 'mlb' and model == @model").sort_values("seed")["accuracy"].to_numpy()
        b = scores.query("method == 'naive' and model == @model and seed < 5").sort_values("seed")["accuracy"].to_numpy()
        ci = stats.ttest_rel(a, b).confidence_interval(0.95)
        row = got.loc[model]
        assert row["n_seeds"] == 5 and row["wins"] == int((a > b).sum())
        assert row["diff_mean"] == pytest.approx((a - b).mean(), abs=1e-12)
        assert row["diff_mean_ci_lower"] == pytest.approx(ci.low, abs=1e-12)
        assert row["diff_mean_ci_upper"] == pytest.approx(ci.high, abs=1e-12)
    summary = paired_summary(scores)
    refs = summary.groupby("method")["reference"].apply(set).to_dict()
    assert refs == {"mlb": {"naive", "ensemble", "multi_loss"}, "multi_loss": {"naive", "ensemble"},
                    "naive": {"ensemble"}}
    assert set(summary.query("reference == 'ensemble'")["model"]) == {"fused"}


def test_benchmark_reports_paired_rows_and_ablations():
    from workbench.analyses.imbalance_benchmark import ABLATIONS, _strategy_of, run_benchmark

    assert _strategy_of("multi_loss", {}, 8) == ("mlb", {"alpha": 0.0})
    assert _strategy_of("mcr", {"mcr": {"num_perms": 32}}, 8) == ("mcr", {"num_perms": 32, "pretrain_epochs": 8})
    assert _strategy_of("mcr_no_reg", {"mcr": {"num_perms": 4}}, 8)[1] == {"num_perms": 4, "lam": 0.0,
                                                                           "pretrain_epochs": 8}
    assert _strategy_of("mcr_no_pretrain", {}, 8)[1]["pretrain_epochs"] == 0
    assert _strategy_of("ogm_ge_no_ge", {"ogm_ge": {"alpha": 0.8}}, 8)[1] == {"alpha": 0.8, "ge": False}
    assert set(ABLATIONS) >= {"multi_loss", "mcr_no_reg", "mcr_no_contrastive", "ogm_ge_no_ge"}
    methods = ["naive", "mlb", "multi_loss", "ensemble"]
    res = run_benchmark(["synthetic-imbalance"], methods, seeds=[0, 1], epochs=2,
                        dataset_params={"synthetic-imbalance": {"n": 200}}, progress=False)
    p = res.paired
    assert len(p.query("method == 'mlb'")) == 3 + 3 + 1  # naive, multi_loss: fused + 2 probes; ensemble: fused
    row = p.query("method == 'mlb' and reference == 'multi_loss' and model == 'weak'").iloc[0]
    s = res.scores.set_index(["method", "model", "seed"])["accuracy"]
    diffs = [s[("mlb", "weak", k)] - s[("multi_loss", "weak", k)] for k in (0, 1)]
    assert row["diff_mean"] == pytest.approx(sum(diffs) / 2) and row["n_seeds"] == 2
    table = res.paired_table("naive")
    assert list(table.index.get_level_values("method")) == ["mlb", "multi_loss"]
    assert set(table.columns) == {"fused", "probe strong", "probe weak"}
