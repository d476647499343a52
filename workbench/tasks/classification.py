"""Classification: a fused head and one unimodal head per modality, cross-entropy, accuracy.

The first task of the workbench and the default (``TrainConfig(task="classification")``). The
model is :class:`~workbench.models.multimodal.MultimodalModel`; its unimodal heads are what the
imbalance, Shapley and fairness analyses read.

Missing modalities (presence mask ``modality -> bool[n]``): a unimodal head's loss is averaged
over the samples that have its modality, the fused loss over the samples that have at least one
(a sample with nothing present carries no information and would only teach the head its bias).
Without a mask both are plain means, so mask-free runs are unchanged.

Example
-------
>>> import torch
>>> from workbench.tasks.classification import ClassificationTask
>>> task = ClassificationTask()
>>> model = task.build_model(shapes={"a": (5,), "b": (3,)}, kinds={"a": "vector", "b": "vector"},
...                          n_classes=2, config={"fusion": "concat", "hidden": 8, "embed": 4, "dropout": 0.0})
>>> out = model({"a": torch.randn(6, 5), "b": torch.randn(6, 3)})
>>> y = torch.tensor([0, 1, 0, 1, 0, 1])
>>> float(task.loss(out, y)) > 0, int(task.batch_statistic(out, y)) <= 6
(True, True)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from workbench.data import MultimodalDataset
from workbench.models.multimodal import ModelOutput, MultimodalModel, build_model
from workbench.tasks.base import Task, register_task

__all__ = ["ClassificationTask", "accuracy_table", "fused_loss", "metrics_from_predictions", "predict_frame",
           "predict_proba", "unimodal_losses"]


def _masked_mean(values: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``values`` over the rows where ``weight`` is 1 (graph-safe: no boolean indexing)."""
    if weight is None:
        return values.mean()
    weight = weight.to(values.dtype)
    return (values * weight).sum() / weight.sum().clamp_min(1.0)


def any_present(mask: dict[str, torch.Tensor] | None) -> torch.Tensor | None:
    """``bool[n]``: the samples with at least one modality present (``None`` without a mask)."""
    if not mask:
        return None
    return torch.stack([v.bool() for v in mask.values()], 0).any(0)


def fused_loss(out: ModelOutput, y: torch.Tensor, reduction: str = "mean",
               mask: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """Cross-entropy of the fused logits; with a mask, averaged over samples with >= 1 modality
    (``reduction="none"``: zero for samples with none)."""
    ce = F.cross_entropy(out.logits.float(), y, reduction="none" if mask is not None or reduction == "none"
                         else reduction)
    if mask is None:
        return ce
    present = any_present(mask)
    if reduction == "none":
        return ce * present.to(ce.dtype)
    return _masked_mean(ce, present)


def unimodal_per_sample(out: ModelOutput, y: torch.Tensor,
                        mask: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """Per sample, the sum of the unimodal heads' cross-entropies over the modalities it has
    (what per-sample weighting schemes combine with the fused loss)."""
    total = torch.zeros(len(y), device=y.device)
    for m, z in out.unimodal_logits.items():
        ce = F.cross_entropy(z.float(), y, reduction="none")
        total = total + (ce * mask[m].to(ce.dtype) if mask is not None and m in mask else ce)
    return total


def unimodal_losses(out: ModelOutput, y: torch.Tensor,
                    mask: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Cross-entropy of every unimodal head, each over the samples that have its modality."""
    if mask is None:
        return {m: F.cross_entropy(z.float(), y) for m, z in out.unimodal_logits.items()}
    return {m: _masked_mean(F.cross_entropy(z.float(), y, reduction="none"), mask.get(m))
            for m, z in out.unimodal_logits.items()}


@register_task("classification")
class ClassificationTask(Task):
    """Multiclass classification with a fused head and a unimodal head per modality.

    Loss ``CE(z_fused, y) + w_uni * sum_m CE(z_m, y)`` (``w_uni`` is the strategy's
    ``unimodal_weight``); training statistic: accuracy of the fused head; held-out: loss and
    accuracy of the fused head and the accuracy of every unimodal head.
    """

    train_metric = "acc"

    def check_dataset(self, ds: MultimodalDataset) -> None:
        if ds.n_classes < 2:
            raise ValueError(f"dataset {ds.name!r} has {ds.n_classes} class(es); classification needs >= 2")

    def build_model(self, *, shapes: Mapping[str, tuple[int, ...]], kinds: Mapping[str, str], n_classes: int,
                    config: Mapping[str, Any], encoders: dict[str, nn.Module] | None = None) -> MultimodalModel:
        return build_model(dict(shapes), dict(kinds), n_classes, fusion=config["fusion"], hidden=config["hidden"],
                           embed=config["embed"], dropout=config["dropout"], encoders=encoders)

    def loss(self, out: ModelOutput, y: torch.Tensor, mask: dict[str, torch.Tensor] | None = None, *,
             unimodal_weight: float = 1.0) -> torch.Tensor:
        return fused_loss(out, y, mask=mask) + unimodal_weight * sum(unimodal_losses(out, y, mask).values())

    def batch_statistic(self, out: ModelOutput, y: torch.Tensor) -> torch.Tensor:
        return (out.logits.argmax(1) == y).sum()

    @torch.no_grad()
    def evaluate(self, model: MultimodalModel, x: dict[str, torch.Tensor], y: torch.Tensor,
                 mask: dict[str, torch.Tensor] | None = None) -> dict[str, float]:
        model.eval()
        out = model(x, mask)
        row = {"heldout_loss": float(F.cross_entropy(out.logits.float(), y)),
               "heldout_acc": float((out.logits.argmax(1) == y).float().mean())}
        for m, z in out.unimodal_logits.items():
            row[f"heldout_acc_{m}"] = float((z.argmax(1) == y).float().mean())
        return row

    def predict_frame(self, model: MultimodalModel, ds: MultimodalDataset, idx: np.ndarray | None = None, *,
                      mask: dict[str, torch.Tensor] | None = None,
                      split_labels: np.ndarray | None = None) -> pd.DataFrame:
        return predict_frame(model, ds, idx, mask=mask, split_labels=split_labels)

    def prediction_columns(self, modalities: list[str]) -> list[str]:
        return ["sample", "y", "pred", "split", *(f"pred_{m}" for m in modalities)]

    def score_table(self, predictions: pd.DataFrame, modalities: list[str]) -> pd.DataFrame:
        """Accuracy of the fused model and every unimodal head per split (:func:`accuracy_table`)."""
        table = accuracy_table(predictions, modalities)
        table["kind"] = np.where(table["model"] == "fused", "fused", "unimodal head")
        table["measure"] = "accuracy"
        return table

    def metrics(self, predictions: pd.DataFrame, modalities: list[str]) -> dict:
        return metrics_from_predictions(predictions, modalities)


# -- predictions ---------------------------------------------------------------------------------
@torch.no_grad()
def predict_proba(model: MultimodalModel, ds: MultimodalDataset, idx: np.ndarray | None = None, *,
                  mask: dict[str, torch.Tensor] | None = None, batch_size: int = 4096):
    """Fused and unimodal class probabilities, as CPU tensors ``(n, C)`` and ``{m: (n, C)}``.

    ``mask`` (``modality -> bool[n]`` over the selected samples) hides modalities; the
    dataset's own presence mask is combined with it.
    """
    model.eval()
    device = next(model.parameters()).device
    idx = np.arange(ds.n_samples) if idx is None else np.asarray(idx)
    fused, uni = [], {m: [] for m in model.modalities}
    for s in range(0, len(idx), batch_size):
        sl = torch.as_tensor(idx[s : s + batch_size], dtype=torch.long)
        xb = {m: ds.modalities[m][sl].to(device) for m in model.modalities}
        mb = _combine_masks(ds, sl, mask, s, len(sl), device)
        out = model(xb, mb)
        fused.append(out.logits.float().softmax(1).cpu())
        for m, z in out.unimodal_logits.items():
            uni[m].append(z.float().softmax(1).cpu())
    return torch.cat(fused), {m: torch.cat(v) for m, v in uni.items()}


def _combine_masks(ds, sl, mask, start, count, device):
    if ds.mask is None and mask is None:
        return None
    out = {}
    for m in ds.modality_names:
        v = ds.presence(m)[sl]
        if mask is not None and m in mask:
            v = v & torch.as_tensor(mask[m], dtype=torch.bool)[start : start + count]
        out[m] = v.to(device)
    return out


def predict_frame(model: MultimodalModel, ds: MultimodalDataset, idx: np.ndarray | None = None, *,
                  mask: dict[str, torch.Tensor] | None = None, split_labels: np.ndarray | None = None) -> pd.DataFrame:
    """Tidy per-sample predictions: ``sample, y, pred, p_true, p_<class>...`` and per
    modality ``p_true_<m>`` (true-class probability of its unimodal head) and ``pred_<m>``."""
    idx = np.arange(ds.n_samples) if idx is None else np.asarray(idx)
    fused, uni = predict_proba(model, ds, idx, mask=mask)
    y = ds.y[torch.as_tensor(idx, dtype=torch.long)]
    frame = {"sample": idx, "y": y.numpy(), "pred": fused.argmax(1).numpy(),
             "p_true": fused.gather(1, y[:, None])[:, 0].numpy()}
    if split_labels is not None:
        frame["split"] = split_labels[idx]
    for c in range(fused.shape[1]):
        frame[f"p_{c}"] = fused[:, c].numpy()
    for m, p in uni.items():
        frame[f"p_true_{m}"] = p.gather(1, y[:, None])[:, 0].numpy()
        frame[f"pred_{m}"] = p.argmax(1).numpy()
    out = pd.DataFrame(frame)
    if ds.groups is not None:
        for g in ds.groups.columns:
            out[f"group_{g}"] = ds.groups[g].to_numpy()[idx]
    return out


# -- run metrics ---------------------------------------------------------------------------------
def accuracy_table(predictions: pd.DataFrame, modalities: list[str]) -> pd.DataFrame:
    """Accuracy per split of the fused model and every unimodal head (long format)."""
    rows = []
    splits = predictions["split"].unique() if "split" in predictions else ["all"]
    for split in splits:
        part = predictions if split == "all" else predictions[predictions["split"] == split]
        rows.append({"split": split, "model": "fused", "accuracy": float((part["pred"] == part["y"]).mean()),
                     "n": len(part)})
        for m in modalities:
            rows.append({"split": split, "model": m, "accuracy": float((part[f"pred_{m}"] == part["y"]).mean()),
                         "n": len(part)})
    return pd.DataFrame(rows)


def metrics_from_predictions(predictions: pd.DataFrame, modalities: list[str]) -> dict:
    """``{split: {"fused": acc, modality: acc, "n": count}}``."""
    table = accuracy_table(predictions, modalities)
    out: dict[str, dict] = {}
    for split, part in table.groupby("split"):
        out[str(split)] = {str(r.model): float(r.accuracy) for r in part.itertuples()}
        out[str(split)]["n"] = int(part["n"].iloc[0])
    return out
