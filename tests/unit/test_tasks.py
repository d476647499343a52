"""The Task interface: a task from a test module trains through train(), the run store and load_model;
strategies declare their tasks; the classification loss honours the presence mask."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from workbench import load_dataset, load_run, train
from workbench.models.multimodal import ModelOutput
from workbench.tasks import Task, available_tasks, make_task, register_task, unregister_task
from workbench.tasks.classification import ClassificationTask, fused_loss, unimodal_losses
from workbench.training.config import TrainConfig, config_key
from workbench.training.train import run_id_for


class SumRegressor(nn.Module):
    """One linear map per modality, summed: predicts a number."""

    def __init__(self, shapes):
        super().__init__()
        self.maps = nn.ModuleDict({m: nn.Linear(int(np.prod(s)), 1) for m, s in shapes.items()})
        self.standardized = False

    def set_standardization(self, x):
        self.standardized = True

    def forward(self, x, mask=None, *, detach_unimodal=False):
        return sum(self.maps[m](x[m].flatten(1).float())[:, 0] for m in self.maps)


class LabelRegression(Task):
    """Regress the class index as a number (a task that is not classification)."""

    train_metric = "sq_err"

    def __init__(self, *, scale: float = 1.0):
        self.scale = scale

    def params(self):
        return {"scale": self.scale}

    def build_model(self, *, shapes, kinds, n_classes, config, encoders=None):
        return SumRegressor(shapes)

    def loss(self, out, y, mask=None, *, unimodal_weight=1.0):
        return F.mse_loss(out, self.scale * y.float())

    def batch_statistic(self, out, y):
        return ((out - self.scale * y.float()) ** 2).sum()

    @torch.no_grad()
    def evaluate(self, model, x, y, mask=None):
        return {"heldout_loss": float(F.mse_loss(model(x, mask), self.scale * y.float()))}

    @torch.no_grad()
    def predict_frame(self, model, ds, idx=None, *, mask=None, split_labels=None):
        idx = np.arange(ds.n_samples) if idx is None else np.asarray(idx)
        pred = model({m: t[idx] for m, t in ds.modalities.items()}).numpy()
        frame = pd.DataFrame({"sample": idx, "y": ds.y.numpy()[idx], "pred": pred})
        if split_labels is not None:
            frame["split"] = split_labels[idx]
        return frame

    def metrics(self, predictions, modalities):
        return {str(s): {"mse": float(((p["pred"] - self.scale * p["y"]) ** 2).mean()), "n": len(p)}
                for s, p in predictions.groupby("split")}


@pytest.fixture
def regression_task():
    register_task("test_label_regression")(LabelRegression)
    yield "test_label_regression"
    unregister_task("test_label_regression")


def test_a_task_from_a_test_module_trains_saves_and_reloads(regression_task, tmp_path):
    run = train("synthetic-imbalance", task=regression_task, task_params={"scale": 2.0}, epochs=4, lr=0.01,
                dataset_params={"n": 300}, runs_dir=tmp_path, progress=False)
    history = run.history
    assert "train_sq_err" in history and "train_acc" not in history
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    assert set(run.metrics) == {"train", "calib", "test"} and run.metrics["test"]["mse"] >= 0
    assert run.config["train"]["task"] == regression_task and run.config["strategy"]["task"] == regression_task
    again = load_run(run.run_id, runs_dir=tmp_path)
    model = again.load_model()
    assert isinstance(model, SumRegressor)
    ds = load_dataset("synthetic-imbalance", n=300)
    test = again.predictions[again.predictions["split"] == "test"]
    with torch.no_grad():
        pred = model({m: t[test["sample"].to_numpy()] for m, t in ds.modalities.items()}).numpy()
    np.testing.assert_allclose(pred, test["pred"].to_numpy(), rtol=1e-5, atol=1e-5)


def test_strategies_declare_their_tasks(regression_task):
    from workbench.training.trainer import Trainer

    Trainer(TrainConfig(task=regression_task, strategy="naive"))  # naive uses the task's own loss
    with pytest.raises(ValueError, match="strategy 'ogm_ge' supports the task"):
        Trainer(TrainConfig(task=regression_task, strategy="ogm_ge"))


def test_unknown_task_and_stacked_training_refuse_other_tasks(regression_task):
    from workbench.training.stacked import train_stacked

    with pytest.raises(ValueError, match="unknown task 'nope'"):
        TrainConfig(task="nope")
    ds = load_dataset("synthetic-imbalance", n=100)
    with pytest.raises(ValueError, match="classification task only"):
        train_stacked(ds, [np.arange(50)], torch.ones(1, 2, dtype=torch.bool), [0],
                      config=TrainConfig(task=regression_task, epochs=1))


def test_default_task_leaves_run_ids_unchanged(regression_task):
    # runs recorded before tasks existed keep their ids: the default task is not hashed
    assert "task" not in config_key(TrainConfig()) and "task_params" not in config_key(TrainConfig())
    assert config_key(TrainConfig(task=regression_task))["task"] == regression_task
    assert run_id_for("x", TrainConfig()) != run_id_for("x", TrainConfig(task=regression_task))
    assert "classification" in available_tasks() and make_task("classification").name == "classification"


def _output(n=8, c=3, m=("a", "b"), seed=0):
    g = torch.Generator().manual_seed(seed)
    return ModelOutput(torch.randn(n, c, generator=g), {k: torch.randn(n, c, generator=g) for k in m}, {})


def test_classification_losses_honour_the_presence_mask():
    out, y = _output(), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    mask = {"a": torch.tensor([1, 1, 0, 0, 1, 1, 0, 0], dtype=torch.bool),
            "b": torch.tensor([1, 0, 1, 0, 1, 0, 1, 0], dtype=torch.bool)}
    uni = unimodal_losses(out, y, mask)
    for m in ("a", "b"):  # each head's loss is the mean over the samples that have its modality
        keep = mask[m]
        assert torch.allclose(uni[m], F.cross_entropy(out.unimodal_logits[m][keep], y[keep]))
    some = mask["a"] | mask["b"]  # sample 3 and 7 have nothing: left out of the fused loss
    assert torch.allclose(fused_loss(out, y, mask=mask), F.cross_entropy(out.logits[some], y[some]))
    # without a mask: plain means, as before
    assert torch.equal(fused_loss(out, y), F.cross_entropy(out.logits, y))
    total = ClassificationTask().loss(out, y, mask, unimodal_weight=0.5)
    assert torch.allclose(total, fused_loss(out, y, mask=mask) + 0.5 * (uni["a"] + uni["b"]))


def test_a_head_without_any_present_sample_adds_nothing():
    out, y = _output(n=4), torch.tensor([0, 1, 2, 0])
    mask = {"a": torch.zeros(4, dtype=torch.bool), "b": torch.ones(4, dtype=torch.bool)}
    assert float(unimodal_losses(out, y, mask)["a"]) == 0.0
