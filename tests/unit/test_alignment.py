"""ConFu alignment task and chunked retrieval: known answers and references."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from workbench import load_dataset, load_run, train
from workbench.analyses.retrieval import retrieval_table
from workbench.stats.retrieval import partner_ranks, recall_at_k, top1_among_candidates
from workbench.tasks.alignment import AlignmentOutput, confu_loss, embeddings_from_frame, info_nce


@pytest.mark.parametrize("tau", [1.0, 0.07])
@pytest.mark.parametrize("batch", [2, 8])
def test_info_nce_on_identical_orthonormal_embeddings(tau, batch):
    z = torch.eye(batch)
    assert float(info_nce(z, z, tau=tau)) == pytest.approx(math.log(1 + (batch - 1) * math.exp(-1 / tau)), rel=1e-5, abs=1e-6)


def _random_output(n=16, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = {m: F.normalize(torch.randn(n, d, generator=g), dim=1) for m in "abc"}
    pairs = {f"{i}+{j}": F.normalize(torch.randn(n, d, generator=g), dim=1) for i, j in itertools.combinations("abc", 2)}
    return AlignmentOutput(z, pairs)


def test_lambda_zero_is_the_mean_of_the_three_clip_terms_and_lambda_weighs_the_fused_terms():
    out = _random_output()
    clip = [info_nce(out.z[i], out.z[j]) for i, j in [("a", "b"), ("b", "c"), ("c", "a")]]
    assert float(confu_loss(out, lam=0.0)) == pytest.approx(float(sum(clip) / 3), rel=1e-6)
    fused = [info_nce(out.pairs["a+b"], out.z["c"]), info_nce(out.pairs["a+c"], out.z["b"]),
             info_nce(out.pairs["b+c"], out.z["a"])]
    # the authors' pairwise_contrastive_loss: [lam * sum(fused) + (1 - lam) * sum(pairs)] / 6
    authors = (0.3 * sum(fused) + 0.7 * sum(clip)) / 6
    assert float(confu_loss(out, lam=0.3)) == pytest.approx(float(authors), rel=1e-6)
    assert float(confu_loss(out, lam=0.3, normalization="mean")) == pytest.approx(2 * float(authors), rel=1e-6)
    with pytest.raises(ValueError, match="normalization"):
        confu_loss(out, normalization="sum")


def test_four_modalities_count_every_pair_and_every_fused_pair_with_each_outside_modality():
    g = torch.Generator().manual_seed(1)
    z = {m: F.normalize(torch.randn(12, 6, generator=g), dim=1) for m in "abcd"}
    pairs = {f"{i}+{j}": F.normalize(torch.randn(12, 6, generator=g), dim=1)
             for i, j in itertools.combinations("abcd", 2)}
    out = AlignmentOutput(z, pairs)
    pair_terms = [info_nce(z[i], z[j]) for i, j in itertools.combinations("abcd", 2)]
    fused_terms = [info_nce(v, z[k]) for p, v in pairs.items() for k in "abcd" if k not in p]
    assert len(pair_terms) == 6 and len(fused_terms) == 12
    expected = (0.5 * sum(fused_terms) + 0.5 * sum(pair_terms)) / 18
    assert float(confu_loss(out, lam=0.5)) == pytest.approx(float(expected), rel=1e-6)


def test_chunked_ranks_equal_a_dense_reference():
    rng = np.random.default_rng(0)
    q = rng.standard_normal((101, 5)).astype(np.float32)
    g = q + 0.8 * rng.standard_normal((101, 5)).astype(np.float32)
    sims = q @ g.T
    dense = 1 + (sims > np.diag(sims)[:, None]).sum(1)
    assert np.array_equal(partner_ranks(q, g, chunk=7), dense)
    assert recall_at_k(dense, 5) == pytest.approx(float((dense <= 5).mean()))


def test_recall_on_hand_made_rankings_and_candidates():
    q = np.eye(4)
    g = np.eye(4)[[0, 1, 3, 2]]  # queries 2 and 3 see each other's partner first
    ranks = partner_ranks(q, g)
    assert ranks.tolist() == [1, 1, 2, 2]
    assert recall_at_k(ranks, 1) == 0.5 and recall_at_k(ranks, 2) == 1.0
    assert top1_among_candidates(np.eye(3), np.eye(3), np.array([0, 2, 1])) == pytest.approx(1 / 3)
    table = retrieval_table({"x": q.astype(np.float32), "y": g.astype(np.float32)}, n_boot=50).table
    r1 = table[(table["query"] == "x") & (table["metric"] == "R@1")].iloc[0]
    assert r1["value"] == 0.5 and r1["value_ci_lower"] <= 0.5 <= r1["value_ci_upper"] and r1["level"] == 0.95


def test_xor_trimodal_pairs_are_independent_and_the_oracle_is_stated():
    pure = load_dataset("xor-trimodal", n=20000, d=2, p=1.0, seed=1)
    a, b, c = (pure.modalities[m].numpy() > 0 for m in "abc")
    for u, v in [(a, b), (b, c), (a, c)]:  # at p = 1 every pair of bits is independent (joint = product)
        joint = np.mean(u[:, 0] & v[:, 0])
        assert joint == pytest.approx(u[:, 0].mean() * v[:, 0].mean(), abs=0.01)
    ds = load_dataset("xor-trimodal", n=20000, d=2, p=0.7, seed=1)
    assert ds.ground_truth["oracle_2to1"] == pytest.approx(0.7 + 0.3 / 4)
    a, b, c = (ds.modalities[m].numpy() > 0 for m in "abc")
    xor = np.mean(np.all(c == (a ^ b), axis=1))
    assert xor == pytest.approx(0.7 + 0.3 * np.mean(np.all(b == 0, axis=1)), abs=0.02)


def test_an_alignment_run_trains_saves_and_reloads(tmp_path):
    run = train("xor-trimodal", task="alignment", task_params={"dim": 8}, dataset_params={"n": 400},
                epochs=2, batch_size=64, hidden=16, embed=8, runs_dir=tmp_path, progress=False)
    assert "train_top1" in run.history and "heldout_top1" in run.history
    assert {"r1_1to1", "r10_1to1", "r1_2to1"} <= set(run.metrics["test"])
    again = load_run(run.run_id, runs_dir=tmp_path)
    model = again.load_model()
    ds = load_dataset("xor-trimodal", n=400)
    test = again.predictions[again.predictions["split"] == "test"]
    with torch.no_grad():
        out = model({m: ds.modalities[m][test["sample"].to_numpy()] for m in ds.modality_names})
    stored = embeddings_from_frame(test)
    np.testing.assert_allclose(out.pairs["a+c"].numpy(), stored["a+c"], atol=1e-5)
    with pytest.raises(ValueError, match="strategy 'ogm_ge' supports the task"):
        train("xor-trimodal", task="alignment", strategy="ogm_ge", dataset_params={"n": 100}, save=False)


def test_retrieval_matrix_figure_draws_the_table():
    from widgets.figures import figures_for_result

    rng = np.random.default_rng(0)
    z = {m: rng.standard_normal((30, 4)).astype(np.float32) for m in "ab"}
    result = retrieval_table(z, {"a+b": z["a"]}, ks=(1, 5), n_boot=20)
    figs = figures_for_result("retrieval", result)
    assert len(figs) == 2
    heat = figs[1].data[0]
    t = result.table[(result.table["metric"] == "R@5")]
    want = t.set_index(["query", "gallery"])["value"]
    for i, q in enumerate(heat.y):
        for j, g in enumerate(heat.x):
            if (q, g) in want.index:
                assert heat.z[i][j] == pytest.approx(want[(q, g)])


def test_cosine_schedule_is_torchs_cosine_annealing():
    from workbench.training.optim import apply_schedule, make_optimizer

    lin = torch.nn.Linear(2, 1)
    ours = make_optimizer(lin.parameters(), lr=1e-3, weight_decay=1e-4, kind="adamw")
    ref_opt = torch.optim.AdamW(torch.nn.Linear(2, 1).parameters(), lr=1e-3)
    ref = torch.optim.lr_scheduler.CosineAnnealingLR(ref_opt, T_max=7, eta_min=1e-6)
    assert type(ours).__name__ == "AdamW"
    for epoch in range(7):
        apply_schedule(ours, epoch, epochs=7, lr=1e-3, lr_min=1e-6, schedule="cosine")
        assert ours.param_groups[0]["lr"] == pytest.approx(ref_opt.param_groups[0]["lr"], rel=1e-9)
        ref_opt.step()
        ref.step()


def test_alignment_trains_with_adamw_and_cosine_and_resumes_on_the_same_curve(tmp_path, kill_after):
    from workbench import load_dataset
    from workbench.training.config import TrainConfig
    from workbench.training.trainer import Trainer

    ds = load_dataset("xor-trimodal", n=300, d=2, p=1.0, seed=0)
    splits = ds.split(seed=0)
    cfg = TrainConfig(task="alignment", task_params={"dim": 8}, optimizer="adamw", schedule="cosine", epochs=4,
                      batch_size=64, progress=False, device="cpu", hidden=16, embed=8)
    full = Trainer(cfg).fit(ds, splits)
    ck = tmp_path / "ck.pt"
    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg, callbacks=[kill_after(2)]).fit(ds, splits, checkpoint_path=ck)
    state = torch.load(ck, weights_only=True)
    assert state["epoch"] == 2
    # the rate of epoch 2 (0-based 1) of a 4-epoch cosine from 1e-3 down to 1e-6
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(1e-6 + (1e-3 - 1e-6) * (1 + math.cos(math.pi / 4)) / 2)
    resumed = Trainer(cfg).fit(ds, splits, checkpoint_path=ck, resume=True)
    assert np.allclose(resumed.history["train_loss"], full.history["train_loss"], rtol=1e-5)
    for k, v in full.model_.state_dict().items():
        assert torch.allclose(v, resumed.model_.state_dict()[k], atol=1e-6)
