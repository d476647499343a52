"""Batched (stacked, vmapped) training equals separate training; the step-mode decision is recorded."""

import numpy as np
import pytest
import torch

from workbench import Strategy, load_dataset, train
from workbench.models.multimodal import build_model
from workbench.training.stacked import (
    all_coalitions,
    coalition_dataset_mask,
    train_coalitions,
    train_seeds,
)
from workbench.training.trainer import TrainConfig, Trainer


def _max_param_diff(a, b, *, used_by: tuple[str, ...] | None = None) -> float:
    """Largest parameter difference; with ``used_by``, over what a model of that coalition uses."""
    def used(name: str) -> bool:
        parts = name.split(".")
        return used_by is None or parts[0] != "encoders" or parts[1] in used_by

    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    return max(float((sa[k] - sb[k]).abs().max()) for k in sa if used(k))


@pytest.mark.parametrize("n_modalities, fusion", [(2, "concat"), (4, "gated"), (3, "late"), (3, "sum")])
def test_batched_coalitions_equal_separate_training(n_modalities, fusion):
    snr = [2.0, 1.0, 0.6, 0.3][:n_modalities]
    ds = load_dataset("synthetic-imbalance", n=240, snr=snr, dims=[5, 4, 3, 6][:n_modalities], seed=3)
    splits = ds.split(seed=0)
    coalitions = all_coalitions(ds.modality_names)
    assert len(coalitions) == 2**n_modalities - 1
    fit = train_coalitions(ds, splits, coalitions, epochs=3, seed=1, fusion=fusion, dropout=0.0,
                           batch_size=32, progress=False)
    for k in {0, len(coalitions) // 2, len(coalitions) - 1}:
        cfg = TrainConfig(epochs=3, seed=1, fusion=fusion, dropout=0.0, batch_size=32, progress=False, eval_every=0)
        ref = Trainer(cfg).fit(coalition_dataset_mask(ds, coalitions[k]), splits)
        assert _max_param_diff(ref.model_, fit.models[k], used_by=coalitions[k]) < 1e-5, coalitions[k]
        absent = [m for m in ds.modality_names if m not in coalitions[k]]
        if absent:  # encoders a coalition never uses are left untrained, not decayed
            torch.manual_seed(1)
            init = build_model(ds.shapes, ds.kinds, ds.n_classes, fusion=fusion, dropout=0.0)
            assert all(torch.equal(p, q) for p, q in zip(fit.models[k].encoders[absent[0]].parameters(),
                                                         init.encoders[absent[0]].parameters(), strict=True))


def test_chunking_does_not_change_results():
    ds = load_dataset("synthetic-xor", n=200, seed=1)
    splits = ds.split(seed=0)
    whole = train_coalitions(ds, splits, epochs=2, dropout=0.0, progress=False)
    chunked = train_coalitions(ds, splits, epochs=2, dropout=0.0, progress=False, chunk_size=3)
    assert all(_max_param_diff(a, b) < 1e-6 for a, b in zip(whole.models, chunked.models, strict=True))
    assert np.allclose(whole.losses, chunked.losses, atol=1e-6)


def test_coalition_models_only_use_their_modalities():
    ds = load_dataset("synthetic-imbalance", n=600, snr=[3.0, 0.0], seed=2)  # "weak" carries no signal
    splits = ds.split(seed=0)
    fit = train_coalitions(ds, splits, [("weak",), ("strong", "weak")], epochs=10, progress=False)
    x = {m: t[splits.test] for m, t in ds.modalities.items()}
    y = ds.y[splits.test]
    acc = []
    for model, present in zip(fit.models, fit.masks, strict=True):
        mask = {m: present[j].expand(len(y)) for j, m in enumerate(ds.modality_names)}
        with torch.no_grad():
            acc.append(float((model(x, mask).logits.argmax(1) == y).float().mean()))
    assert acc[0] < 0.4 and acc[1] > 0.85  # 4 classes: the signal-free modality alone is near chance


def test_batched_seeds_equal_separate_runs():
    ds = load_dataset("synthetic-imbalance", n=200, seed=4)
    fit, splits = train_seeds(ds, [0, 1, 2], epochs=2, dropout=0.0, progress=False)
    for model, seed in zip(fit.models, [0, 1, 2], strict=True):
        ref = train(ds, epochs=2, seed=seed, dropout=0.0, save=False, progress=False)
        assert _max_param_diff(ref.model, model) < 1e-5


class HostSide(Strategy):
    name = "host_side"
    graph_safe = False


def test_step_mode_is_recorded_with_its_reason():
    ds = load_dataset("synthetic-xor", n=120)
    run = train(ds, epochs=1, save=False, progress=False)
    assert run.config["strategy"]["step_mode"] == "eager"
    if not torch.cuda.is_available():
        assert "no CUDA graph on cpu" in run.config["strategy"]["step_mode_reason"]
    tr = Trainer(TrainConfig(epochs=1, progress=False, device="cuda" if torch.cuda.is_available() else "cpu"),
                 strategy=HostSide()).fit(ds, ds.split(seed=0))
    assert tr.step_mode_ == "eager"
    if torch.cuda.is_available():
        assert "not graph-safe" in tr.step_mode_reason_


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the CUDA-graph fast path needs a GPU")
def test_fast_path_matches_eager_within_seed_noise():
    ds = load_dataset("synthetic-imbalance", n=2000, seed=0)
    fast = [train(ds, epochs=10, seed=s, device="cuda", save=False, progress=False) for s in range(3)]
    eager = [train(ds, epochs=10, seed=s, device="cuda", fast_path=False, save=False, progress=False) for s in range(3)]
    assert all(r.config["strategy"]["step_mode"] == "graph" for r in fast)
    acc_fast = np.mean([r.metrics["test"]["fused"] for r in fast])
    acc_eager = np.array([r.metrics["test"]["fused"] for r in eager])
    assert abs(acc_fast - acc_eager.mean()) < max(3 * acc_eager.std(), 0.02)


def test_shapley_retrain_uses_batched_training_by_default():
    from workbench.analyses.shapley import all_coalitions as coalition_matrix
    from workbench.analyses.shapley import coalition_values

    ds = load_dataset("synthetic-imbalance", n=500, snr=[3.0, 1.0, 0.0], dims=[6, 6, 6], seed=5)
    splits = ds.split(seed=0)
    cfg = TrainConfig(epochs=25, progress=False)
    batched = coalition_values(ds, splits, coalition_matrix(3), method="retrain", config=cfg, progress=False)
    separate = coalition_values(ds, splits, coalition_matrix(3), method="retrain", config=cfg, progress=False,
                                batched=False)
    mean_b, mean_s = batched.values().mean(0), separate.values().mean(0)
    assert np.abs(mean_b - mean_s).max() < 0.1  # same estimand, independent training noise
    assert np.corrcoef(mean_b, mean_s)[0, 1] > 0.98


def test_batched_sgd_equals_the_joint_strategy_with_sgd():
    from workbench.strategies.joint import Joint

    ds = load_dataset("synthetic-imbalance", n=240, seed=5)
    splits = ds.split(seed=0)
    fit = train_coalitions(ds, splits, [("weak",), ("strong", "weak")], epochs=3, seed=2, dropout=0.0,
                           optimizer="sgd", lr=0.05, momentum=0.9, batch_size=32, progress=False)
    for coalition, model in zip(fit.labels, fit.models, strict=True):
        cfg = TrainConfig(epochs=3, seed=2, dropout=0.0, batch_size=32, progress=False, eval_every=0,
                          optimizer="sgd", lr=0.05)
        ref = Trainer(cfg, strategy=Joint()).fit(coalition_dataset_mask(ds, coalition), splits)
        assert _max_param_diff(ref.model_, model, used_by=coalition) < 1e-5, coalition


def test_unimodal_baselines_batched_match_one_by_one_in_accuracy():
    from workbench.analyses.baselines import train_unimodal_models

    ds = load_dataset("synthetic-imbalance", n=600, seed=1)
    sgd = {"optimizer": "sgd", "lr": 0.02}
    acc = {"batched": [], "alone": []}
    for seed in (0, 1, 2):
        batched = train_unimodal_models(ds, epochs=8, seed=seed, batched=True, **sgd)
        alone = train_unimodal_models(ds, epochs=8, seed=seed, batched=False, **sgd)
        test = batched.splits.test
        assert np.array_equal(test, alone.splits.test)
        acc["batched"].append([batched.accuracy(m, test) for m in ds.modality_names])
        acc["alone"].append([alone.accuracy(m, test) for m in ds.modality_names])
        assert batched.ensemble_accuracy(test) >= max(acc["batched"][-1]) - 0.03
    # different initial draws of the same model: mean accuracies agree within seed noise
    assert np.abs(np.mean(acc["batched"], 0) - np.mean(acc["alone"], 0)).max() < 0.08
    assert np.mean(acc["batched"], 0)[0] > 0.85  # the strong modality alone


@pytest.mark.parametrize("fusion, patience", [("concat", None), ("gated", None), ("late", 2)])
def test_batched_coalitions_respect_the_dataset_mask(fusion, patience):
    """Issue 14.12: the dataset's presence mask AND the coalition; batched == one by one (1e-5)."""
    ds = load_dataset("synthetic-missing", n=240, dim=5, seed=2)
    assert ds.mask is not None and not all(bool(v.all()) for v in ds.mask.values())
    splits = ds.split(seed=0)
    coalitions = all_coalitions(ds.modality_names)
    kw = dict(fusion=fusion, dropout=0.0, batch_size=32, patience=patience)
    fit = train_coalitions(ds, splits, coalitions, epochs=6, seed=1, progress=False, **kw)
    for k in (0, 3, len(coalitions) - 1):
        ref_ds = coalition_dataset_mask(ds, coalitions[k])
        for m in ds.modality_names:  # the reference keeps the dataset's own missingness
            assert torch.equal(ref_ds.mask[m], ds.mask[m] & (m in coalitions[k]))
        ref = Trainer(TrainConfig(epochs=6, seed=1, progress=False, **kw)).fit(ref_ds, splits)
        assert _max_param_diff(ref.model_, fit.models[k], used_by=coalitions[k]) < 1e-5, coalitions[k]
        if patience is not None:
            assert fit.epochs_run[k] == ref.stopped_epoch_


def test_batched_early_stopping_matches_the_trainer_and_stops():
    """Issue 14.5: per-model early stopping with best weights, rule for rule the Trainer's."""
    ds = load_dataset("synthetic-imbalance", n=300, snr=[2.0, 0.0], dims=[4, 4], seed=6)
    splits = ds.split(seed=0)
    coalitions = all_coalitions(ds.modality_names)
    kw = dict(dropout=0.0, batch_size=32, patience=1, lr=0.01)
    fit = train_coalitions(ds, splits, coalitions, epochs=40, seed=0, progress=False, **kw)
    assert fit.epochs_run.min() < 40  # the models stopped before the epoch limit
    for k, coalition in enumerate(coalitions):
        ref = Trainer(TrainConfig(epochs=40, seed=0, progress=False, **kw)).fit(coalition_dataset_mask(ds, coalition),
                                                                               splits)
        assert fit.epochs_run[k] == ref.stopped_epoch_, coalition
        assert _max_param_diff(ref.model_, fit.models[k], used_by=coalition) < 1e-5, coalition
