import json

import numpy as np
import pytest
import torch

from workbench import (
    RunError,
    RunStore,
    Strategy,
    TrainConfig,
    Trainer,
    load_dataset,
    load_run,
    train,
)
from workbench.store.runs import STATUS_COMPLETE


@pytest.fixture(scope="module")
def small():
    return load_dataset("synthetic-imbalance", n=400, seed=1)


def test_training_learns_and_history_is_tidy(small):
    run = train(small, epochs=8, progress=False, save=False)
    assert run.metrics["test"]["fused"] > 0.85  # strong modality: SNR 3 clusters
    assert list(run.history["epoch"]) == list(range(1, 9))
    assert {"train_loss", "train_acc", "heldout_acc", "heldout_acc_strong", "heldout_acc_weak"} <= set(run.history.columns)
    assert run.metrics["test"]["strong"] > run.metrics["test"]["weak"]


def test_same_seed_same_numbers_on_cpu(small):
    a = train(small, epochs=3, seed=4, progress=False, save=False)
    b = train(small, epochs=3, seed=4, progress=False, save=False)
    assert a.history["train_loss"].tolist() == b.history["train_loss"].tolist()
    assert np.array_equal(a.predictions["p_true"].to_numpy(), b.predictions["p_true"].to_numpy())


def test_checkpoint_resume_continues_exactly(small, tmp_path):
    splits = small.split(seed=0)
    full = Trainer(TrainConfig(epochs=4, progress=False)).fit(small, splits)
    ckpt = tmp_path / "ckpt.pt"
    Trainer(TrainConfig(epochs=2, progress=False)).fit(small, splits, checkpoint_path=ckpt)
    resumed = Trainer(TrainConfig(epochs=4, progress=False)).fit(small, splits, checkpoint_path=ckpt, resume=True)
    assert resumed.history["epoch"].tolist() == [1, 2, 3, 4]
    assert np.allclose(resumed.history["train_loss"], full.history["train_loss"], rtol=1e-5)
    for p, q in zip(full.model_.parameters(), resumed.model_.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-6)
    state = torch.load(ckpt, weights_only=True)  # plain tensors and containers only
    assert state["epoch"] == 4


def test_early_stopping_restores_best(small):
    cfg = TrainConfig(epochs=60, patience=2, lr=0.05, progress=False)
    tr = Trainer(cfg).fit(small, small.split(seed=0))
    assert tr.stopped_epoch_ < 60
    assert "heldout_loss" in tr.history


class CountingStrategy(Strategy):
    name = "counting"

    def __init__(self):
        super().__init__()
        self.calls = {"epoch_start": 0, "after_backward": 0}

    def setup(self, ctx):
        self.initial = [p.detach().clone() for p in ctx.model.encoder_parameters("weak")]
        self.initial_strong = [p.detach().clone() for p in ctx.model.encoder_parameters("strong")]

    def on_epoch_start(self, ctx, epoch):
        self.calls["epoch_start"] += 1

    def after_backward(self, ctx, batch, out):
        self.calls["after_backward"] += 1
        for p in ctx.model.encoder_parameters("weak"):
            if p.grad is not None:
                p.grad.zero_()  # freeze one encoder from the hook


def test_strategy_hook_can_change_gradients(small):
    strategy = CountingStrategy()
    tr = Trainer(TrainConfig(epochs=2, batch_size=50, weight_decay=0.0, progress=False), strategy=strategy)
    tr.fit(small, small.split(seed=0))
    assert strategy.calls == {"epoch_start": 2, "after_backward": 2 * 5}  # 240 train / 50 per batch
    frozen = [p.detach() for p in tr.model_.encoder_parameters("weak")]
    assert all(torch.equal(a, b) for a, b in zip(strategy.initial, frozen, strict=True))
    moved = [p.detach() for p in tr.model_.encoder_parameters("strong")]
    assert not any(torch.equal(a, b) for a, b in zip(strategy.initial_strong, moved, strict=True))


def test_run_store_roundtrip_and_listing(small, tmp_path):
    run = train(small, epochs=2, runs_dir=tmp_path, progress=False, dataset_params=None)
    store = RunStore(tmp_path)
    assert store.is_complete(run.run_id)
    loaded = load_run(run.path)
    assert loaded.config["train"]["epochs"] == 2 and loaded.history.shape == run.history.shape
    model = loaded.load_model()
    out = model({m: small.modalities[m][:5] for m in small.modality_names})
    assert out.logits.shape == (5, 4)
    table = store.table()
    assert table.loc[0, "status"] == STATUS_COMPLETE and table.loc[0, "test_acc"] == run.metrics["test"]["fused"]


def test_crash_mid_run_leaves_nothing_that_looks_complete(small, tmp_path):
    class Boom(Strategy):
        def on_epoch_end(self, ctx, epoch, row):
            if epoch == 1:
                raise KeyboardInterrupt  # a crash/kill mid-run

    from workbench.strategies import base as strat

    strat.register_strategy("boom", Boom)
    with pytest.raises(KeyboardInterrupt):
        train(small, epochs=4, strategy="boom", runs_dir=tmp_path, progress=False)
    store = RunStore(tmp_path)
    assert store.run_ids() == []  # only the hidden .incomplete folder exists
    assert (tmp_path / ".incomplete").is_dir()


def test_bad_run_folders_raise_clear_errors(small, tmp_path):
    run = train(small, epochs=1, runs_dir=tmp_path, progress=False)
    status = run.path / "status.json"
    status.write_text(json.dumps({"status": "complete", "version": 99}))
    with pytest.raises(RunError, match="format version 99"):
        load_run(run.path)
    status.unlink()
    with pytest.raises(RunError, match="incomplete"):
        RunStore(tmp_path).load(run.run_id)
    RunStore(tmp_path).mark_failed("x-failed", {"train": {}}, "NaN loss")
    with pytest.raises(RunError, match="failed: NaN loss"):
        RunStore(tmp_path).load("x-failed")


class NaNLoss(Strategy):
    def loss(self, ctx, batch, out):
        return super().loss(ctx, batch, out) * float("nan")


def test_nan_loss_is_an_error(small):
    with pytest.raises(FloatingPointError, match="not finite at epoch 1"):
        Trainer(TrainConfig(epochs=2, progress=False), strategy=NaNLoss()).fit(small, small.split(seed=0))
