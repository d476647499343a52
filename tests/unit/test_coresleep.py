"""CoRe-Sleep model and task: known answers (masking, alignment floor), losses, training."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from workbench.models.coresleep import CoReSleepModel, alignment_loss
from workbench.tasks import make_task
from workbench.tasks.coresleep import CoReSleepTask, one_model_prediction

SMALL = dict(d_model=16, heads=2, inner_layers=2, outer_layers=2, ff=32)


def _model(modalities=("eeg", "eog"), L=6, seed=0, dropout=0.0):
    torch.manual_seed(seed)
    return CoReSleepModel(list(modalities), n_bins=12, n_frames=5, seq_len=L, n_classes=5, dropout=dropout,
                          **SMALL).eval()


def _x(modalities=("eeg", "eog"), n=3, L=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    return {m: torch.randn(n, L, 5, 12, generator=g) for m in modalities}


def test_eeg_head_with_eog_fully_masked_equals_eeg_alone():
    model, x = _model(), _x()
    masked = model(x, {"eeg": torch.ones(3, dtype=torch.bool), "eog": torch.zeros(3, dtype=torch.bool)})
    alone = model({"eeg": x["eeg"]})
    assert torch.allclose(masked.unimodal_logits["eeg"], alone.unimodal_logits["eeg"], atol=1e-6, rtol=0)
    assert not masked.present["combined"].any() and not alone.present["combined"].any()
    # and the one-model prediction for EEG-only input is the EEG head
    logits, head = one_model_prediction(masked)
    assert torch.equal(logits, masked.unimodal_logits["eeg"]) and (head == 1).all()


def test_absent_epochs_are_excluded_not_zero_filled():
    model, x = _model(), _x()
    mask = {"eeg": torch.ones(3, 6, dtype=torch.bool), "eog": torch.ones(3, 6, dtype=torch.bool)}
    mask["eog"][0, 2:4] = False
    base = model(x, mask)
    junk = {m: v.clone() for m, v in x.items()}
    junk["eog"][0, 2:4] = 1e3 * torch.randn(2, 5, 12)  # whatever an absent epoch holds is never read
    again = model(junk, mask)
    for k in ("eeg", "combined"):
        z0 = base.logits if k == "combined" else base.unimodal_logits[k]
        z1 = again.logits if k == "combined" else again.unimodal_logits[k]
        assert torch.allclose(z0, z1, atol=1e-5, rtol=0), k
    # zero-filling would be something else: the data of present epochs does reach the output
    junk["eog"][0, 0] += 5.0
    assert not torch.allclose(model(junk, mask).logits[0], base.logits[0], atol=1e-4)
    # the other sequences of the batch are untouched by sequence 0's mask
    assert torch.allclose(base.logits[1:], model(x).logits[1:], atol=1e-5, rtol=0)


def test_multimodal_branch_shares_the_encoders_weights():
    model = _model()
    own = sum(p.numel() for p in model.encoders.parameters()) + sum(
        p.numel() for p in model.unimodal_heads.parameters())
    assert sum(p.numel() for p in model.parameters()) == own + sum(p.numel() for p in model.combined_head.parameters())
    x = _x()
    out = model(x)
    # the combined head reads a stream that differs from the unimodal one: cross-attention is at work
    assert not torch.allclose(out.logits, model.combined_head(torch.zeros(1, 16)).expand_as(out.logits))


@pytest.mark.parametrize("L", [2, 5, 21])
def test_alignment_loss_floor_for_identical_orthonormal_features(L):
    z = torch.eye(32)[:L].unsqueeze(0).repeat(2, 1, 1)
    expected = 2 * math.log(1 + (L - 1) / math.e)
    assert float(alignment_loss(z, z)) == pytest.approx(expected, abs=1e-6)
    # tau scales the logits: 2 log(1 + (L-1) exp(-1/tau))
    assert float(alignment_loss(z, z, tau=0.5)) == pytest.approx(2 * math.log(1 + (L - 1) * math.exp(-2)), abs=1e-6)


def test_alignment_only_where_both_are_present():
    L = 21
    z = torch.eye(32)[:L].unsqueeze(0)
    both = torch.ones(1, L, dtype=torch.bool)
    both[0, 15:] = False  # 15 epochs left: they are the only anchors and negatives
    assert float(alignment_loss(z, z, both)) == pytest.approx(2 * math.log(1 + 14 / math.e), abs=1e-6)
    with pytest.raises(ValueError, match="tau must be a positive"):
        alignment_loss(z, z, tau=0)


def test_loss_trains_only_the_heads_that_have_their_modality():
    task = CoReSleepTask(**SMALL)
    model = _model().train()
    x, y = _x(), torch.randint(0, 5, (3, 6))
    mask = {"eeg": torch.ones(3, dtype=torch.bool), "eog": torch.zeros(3, dtype=torch.bool)}  # EEG-only batch
    task.loss(task.forward(model, x, mask), y, mask).backward()
    assert model.unimodal_heads["eog"].weight.grad is None or not model.unimodal_heads["eog"].weight.grad.any()
    assert all(p.grad is None or not p.grad.any() for p in model.encoders["eog"].parameters())
    assert model.combined_head.weight.grad is None or not model.combined_head.weight.grad.any()
    assert model.unimodal_heads["eeg"].weight.grad.abs().sum() > 0


def test_loss_value_is_the_sum_of_its_terms():
    task = CoReSleepTask(**SMALL, align_weight=0.1)
    model, x = _model(), _x()
    y = torch.randint(0, 5, (3, 6))
    out = model(x)
    ce = torch.nn.functional.cross_entropy
    expected = (ce(out.logits.reshape(-1, 5), y.reshape(-1)) + ce(out.unimodal_logits["eeg"].reshape(-1, 5), y.reshape(-1))
                + ce(out.unimodal_logits["eog"].reshape(-1, 5), y.reshape(-1))
                + 0.1 * alignment_loss(out.epoch_embeddings["eeg"], out.epoch_embeddings["eog"]))
    assert float(task.loss(out, y).detach()) == pytest.approx(float(expected.detach()), rel=1e-6)


def test_three_modalities_and_missing_key():
    model = _model(("eeg", "eog", "emg"))
    x = _x(("eeg", "eog", "emg"))
    full = model(x)
    assert full.logits.shape == (3, 6, 5)
    two = model({"eeg": x["eeg"], "eog": x["eog"]})  # emg not given: absent everywhere
    assert two.present["combined"].all() and not two.present["emg"].any()
    masked = model(x, {"emg": torch.zeros(3, dtype=torch.bool)})
    assert torch.allclose(two.logits, masked.logits, atol=1e-5, rtol=0)


def test_task_parameters_and_dataset_checks():
    with pytest.raises(ValueError, match="d_model \\(30\\) must be divisible by heads \\(8\\)"):
        make_task("coresleep", d_model=30)
    with pytest.raises(ValueError, match="tau must be a positive"):
        make_task("coresleep", tau=-1.0)
    from workbench.data import MultimodalDataset

    flat = MultimodalDataset({"a": torch.randn(4, 3), "b": torch.randn(4, 3)}, torch.tensor([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="modality 'a' has per-sample shape \\[3\\]; coresleep needs"):
        make_task("coresleep").check_dataset(flat)
    seq = MultimodalDataset({"a": torch.randn(4, 2, 5, 12), "b": torch.randn(4, 2, 5, 12)},
                            torch.tensor([0, 1, 0, 1]), kinds={"a": "image", "b": "image"})
    with pytest.raises(ValueError, match="labels of shape \\(n, 2\\)"):
        make_task("coresleep").check_dataset(seq)


@pytest.mark.slow
def test_trainer_learns_staging_on_synthetic_psg_with_missing_nights():
    from data_catalog.sleep import night_splits, synthetic_psg
    from workbench.tasks.coresleep import predict_epochs, staging_metrics
    from workbench.training.trainer import TrainConfig, Trainer

    ds = synthetic_psg(n_nights=8, n_epochs=84, seq_len=21, eeg_only=0.25, eog_only=0.25, seed=0)
    splits = night_splits(ds, train=0.5, calib=0.25, seed=0)
    cfg = TrainConfig(task="coresleep", task_params=dict(d_model=32, heads=4, inner_layers=1, outer_layers=1, ff=64),
                      epochs=6, batch_size=4, lr=1e-3, dropout=0.1, progress=False, seed=0)
    trainer = Trainer(cfg).fit(ds, splits)
    assert {"train_acc", "heldout_acc_eeg", "heldout_acc_eog"} <= set(trainer.history.columns)
    test = splits.test[(ds.mask["eeg"] & ds.mask["eog"]).numpy()[splits.test]]  # complete test nights
    assert len(test)
    for off, head in (("eog", "eeg"), ("eeg", "eog")):
        pred = predict_epochs(trainer.model_, ds, test, mask={off: np.zeros(len(test), dtype=bool)})
        assert (pred["head"] == head).all()
        scores = staging_metrics(pred, ["eeg", "eog"])
        assert scores["fused"] > 0.6, (head, scores)  # chance is the majority-stage share (< 0.45)


@pytest.mark.slow
def test_train_run_store_round_trip(tmp_path):
    from workbench import load_run, train

    run = train("synthetic-psg", dataset_params={"n_nights": 12, "n_epochs": 42, "eeg_only": 0.2}, task="coresleep",
                task_params=dict(SMALL, inner_layers=1, outer_layers=1), epochs=1, batch_size=4, runs_dir=tmp_path,
                progress=False)
    assert {"fused", "macro_f1", "kappa", "eeg", "eog"} <= set(run.metrics["test"])
    # per-epoch predictions: 21 rows per sequence; the EOG head answers only where EOG is present
    pred = run.predictions
    assert len(pred) == 21 * pred["sample"].nunique()
    assert ((pred["pred_eog"] >= 0) == pred["present_eog"]).all()
    table = run.accuracy()
    assert set(table["model"]) == {"fused", "eeg", "eog"}
    model = load_run(run.path).load_model()
    assert type(model).__name__ == "CoReSleepModel"


@pytest.mark.slow
def test_seeded_and_resume_gives_the_uninterrupted_numbers(tmp_path):
    from data_catalog.sleep import night_splits, synthetic_psg
    from workbench.training.trainer import TrainConfig, Trainer

    ds = synthetic_psg(n_nights=4, n_epochs=42, seq_len=21, eeg_only=0.25, seed=1)
    splits = night_splits(ds, train=0.5, calib=0.25, seed=0)
    cfg = TrainConfig(task="coresleep", task_params=dict(SMALL, inner_layers=1, outer_layers=1), epochs=3,
                      batch_size=2, lr=1e-3, dropout=0.1, progress=False, seed=3)
    whole = Trainer(cfg).fit(ds, splits)
    again = Trainer(cfg).fit(ds, splits)
    assert whole.history["train_loss"].tolist() == again.history["train_loss"].tolist()
    ckpt = tmp_path / "checkpoint.pt"
    Trainer(dataclasses.replace(cfg, epochs=2)).fit(ds, splits, checkpoint_path=ckpt)  # "killed" after epoch 2
    resumed = Trainer(cfg).fit(ds, splits, checkpoint_path=ckpt, resume=True)
    assert resumed.history["train_loss"].tolist() == whole.history["train_loss"].tolist()
    for k, v in whole.model_.state_dict().items():
        assert torch.equal(v, resumed.model_.state_dict()[k]), k
