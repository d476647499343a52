"""The ``coresleep`` task: sleep staging of epoch sequences with CoRe-Sleep's heads and losses.

Model: :class:`workbench.models.coresleep.CoReSleepModel` (CoRe-Sleep, arXiv 2304.06485; see that
module for the architecture and its stated deviations). A task rather than an encoder + fusion
head, because CoRe predicts a stage for *every epoch* of a sequence (labels ``y`` of shape
``(n, L)``, one sample = one sequence), its multimodal branch re-runs the encoders' own layers with
cross-attention (no separate fusion module could own that) and its loss has a term, the
alignment, that reads encoder internals. Everything else -- the Trainer, strategies with
``tasks=None`` (``naive``), early stopping, checkpoints, the run store -- is reused unchanged.

Loss (authors' ``agents/helpers/Trainer.py``, method note)::

    L = w_c CE(combined) + sum_m w_m CE(head_m) + w_al L_align,   w_c = w_m = 1, w_al = 0.1

Each cross-entropy is a mean over the epochs where its head produced an output: a unimodal head
where its modality is present (so an EEG-only night trains the EEG path and nothing else), the
combined head where at least two modalities are present (the multimodal branch needs a partner;
the authors' ``_keep_common``), the alignment where both modalities of a pair are present. The
strategy's ``detach_unimodal`` is ignored: CoRe's unimodal heads are trained heads, not probes.

Predictions (one row per epoch): ``pred`` is the one-model answer for whatever arrived -- the
combined head where >= 2 modalities are present, else the present modality's head (``head``
names which; ``-1`` where nothing is present). ``pred_<m>``/``p_true_<m>`` are each head's
(``-1``/NaN where ``m`` is absent). Metrics per split: accuracy, macro-F1 and Cohen's kappa of
``pred`` and the accuracy of each head on its present epochs.

Example
-------
>>> import torch
>>> from workbench.tasks.coresleep import CoReSleepTask
>>> task = CoReSleepTask(d_model=16, heads=2, inner_layers=1, outer_layers=1, ff=32)
>>> model = task.build_model(shapes={"eeg": (3, 5, 16), "eog": (3, 5, 16)}, kinds={"eeg": "image", "eog": "image"},
...                          n_classes=5, config={"dropout": 0.0})
>>> x = {"eeg": torch.randn(2, 3, 5, 16), "eog": torch.randn(2, 3, 5, 16)}
>>> y = torch.randint(0, 5, (2, 3))
>>> float(task.loss(task.forward(model, x, None), y).detach()) > 0
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.metrics import cohen_kappa_score, f1_score
from torch import nn

from workbench.data import MultimodalDataset
from workbench.models.coresleep import CoReOutput, CoReSleepModel, pairwise_alignment
from workbench.tasks.base import Task, register_task

__all__ = ["CoReSleepTask", "one_model_prediction", "predict_epochs", "staging_metrics"]


def _masked_ce(logits: torch.Tensor, y: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the epochs where ``where`` is True (graph-safe, 0 when none)."""
    ce = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="none")
    w = where.reshape(-1).to(ce.dtype)
    return (ce * w).sum() / w.sum().clamp_min(1.0)


def one_model_prediction(out: CoReOutput) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits (n, L, C), head (n, L))``: the combined head where >= 2 modalities are present, else
    the present modality's head; ``head`` is 0 for combined, 1 + index of the modality, -1 for none."""
    names = list(out.unimodal_logits)
    logits = out.logits.clone()
    head = torch.where(out.present["combined"], 0, -1)
    for k, m in enumerate(names):
        alone = out.present[m] & ~out.present["combined"]
        logits = torch.where(alone.unsqueeze(-1), out.unimodal_logits[m], logits)
        head = torch.where(alone, k + 1, head)
    return logits, head


@register_task("coresleep")
class CoReSleepTask(Task):
    """CoRe-Sleep staging (see the module docstring).

    Parameters
    ----------
    d_model, heads, inner_layers, outer_layers, ff : int, keyword-only
        Transformer sizes (paper: 128, 8, 4, 4, 1024). Dropout is the config's ``dropout``
        (the paper uses 0.3).
    align_weight : float, keyword-only
        ``w_al`` (0.1, the authors' ``--al``); 0 turns the alignment off (the ablation).
    tau : float, keyword-only
        Alignment temperature (1: the authors' code has none).
    combined_weight, unimodal_weight : float, keyword-only
        ``w_c`` and every ``w_m`` (1).
    """

    train_metric = "acc"

    def __init__(self, *, d_model: int = 128, heads: int = 8, inner_layers: int = 4, outer_layers: int = 4,
                 ff: int = 1024, align_weight: float = 0.1, tau: float = 1.0, combined_weight: float = 1.0,
                 unimodal_weight: float = 1.0):
        for name, value in {"d_model": d_model, "heads": heads, "inner_layers": inner_layers,
                            "outer_layers": outer_layers, "ff": ff}.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"coresleep: {name} must be a positive integer, got {value!r}")
        if d_model % heads:
            raise ValueError(f"coresleep: d_model ({d_model}) must be divisible by heads ({heads})")
        for name, value in {"align_weight": align_weight, "combined_weight": combined_weight,
                            "unimodal_weight": unimodal_weight}.items():
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value >= 0):
                raise ValueError(f"coresleep: {name} must be a finite number >= 0, got {value!r}")
        if not (isinstance(tau, (int, float)) and np.isfinite(tau) and tau > 0):
            raise ValueError(f"coresleep: tau must be a positive finite number, got {tau!r}")
        self.d_model, self.heads, self.inner_layers, self.outer_layers, self.ff = (
            d_model, heads, inner_layers, outer_layers, ff)
        self.align_weight, self.tau = float(align_weight), float(tau)
        self.combined_weight, self.unimodal_weight = float(combined_weight), float(unimodal_weight)

    def params(self) -> dict:
        return {"d_model": self.d_model, "heads": self.heads, "inner_layers": self.inner_layers,
                "outer_layers": self.outer_layers, "ff": self.ff, "align_weight": self.align_weight,
                "tau": self.tau, "combined_weight": self.combined_weight, "unimodal_weight": self.unimodal_weight}

    def check_dataset(self, ds: MultimodalDataset) -> None:
        if len(ds.modality_names) < 2:
            raise ValueError(f"dataset {ds.name!r} has {len(ds.modality_names)} modality; coresleep needs >= 2")
        shapes = {m: s for m, s in ds.shapes.items()}
        bad = [m for m, s in shapes.items() if len(s) != 3]
        if bad:
            raise ValueError(f"dataset {ds.name!r}: modality {bad[0]!r} has per-sample shape {list(shapes[bad[0]])}; "
                             "coresleep needs (epochs, frames, bins), e.g. data_catalog.sleep.synthetic_psg")
        if len({s for s in shapes.values()}) != 1:
            raise ValueError(f"dataset {ds.name!r}: coresleep needs one (epochs, frames, bins) shape for every "
                             f"modality, got {shapes}")
        L = next(iter(shapes.values()))[0]
        if ds.y.dim() != 2 or ds.y.shape[1] != L:
            raise ValueError(f"dataset {ds.name!r}: coresleep needs labels of shape (n, {L}) (a stage per epoch), "
                             f"got {tuple(ds.y.shape)}")
        if ds.n_classes < 2:
            raise ValueError(f"dataset {ds.name!r} has {ds.n_classes} class(es); staging needs >= 2")

    def build_model(self, *, shapes: Mapping[str, tuple[int, ...]], kinds: Mapping[str, str], n_classes: int,
                    config: Mapping[str, Any], encoders: dict[str, nn.Module] | None = None) -> CoReSleepModel:
        if encoders:
            raise ValueError("coresleep: encoders of your own are not supported (the multimodal branch re-runs "
                             "the built-in encoders' layers)")
        L, n_frames, n_bins = next(iter(shapes.values()))
        return CoReSleepModel(list(shapes), n_bins=n_bins, n_frames=n_frames, seq_len=L, n_classes=n_classes,
                              d_model=self.d_model, heads=self.heads, inner_layers=self.inner_layers,
                              outer_layers=self.outer_layers, ff=self.ff, dropout=float(config.get("dropout", 0.3)))

    def forward(self, model: CoReSleepModel, x: dict[str, torch.Tensor], mask: dict[str, torch.Tensor] | None,
                *, detach_unimodal: bool = False) -> CoReOutput:
        return model(x, mask)

    def loss(self, out: CoReOutput, y: torch.Tensor, mask: dict[str, torch.Tensor] | None = None, *,
             unimodal_weight: float = 1.0) -> torch.Tensor:
        """The loss of the module docstring (the strategy's ``unimodal_weight`` multiplies every ``w_m``)."""
        total = self.combined_weight * _masked_ce(out.logits, y, out.present["combined"])
        for m, z in out.unimodal_logits.items():
            total = total + self.unimodal_weight * unimodal_weight * _masked_ce(z, y, out.present[m])
        if self.align_weight and len(out.epoch_embeddings) >= 2:
            total = total + self.align_weight * pairwise_alignment(out.epoch_embeddings, out.present, tau=self.tau)
        return total

    def batch_statistic(self, out: CoReOutput, y: torch.Tensor) -> torch.Tensor:
        """Per sequence, the share of epochs the one-model prediction gets right, summed."""
        logits, _ = one_model_prediction(out)
        return (logits.argmax(-1) == y).float().mean(1).sum()

    @torch.no_grad()
    def evaluate(self, model: CoReSleepModel, x: dict[str, torch.Tensor], y: torch.Tensor,
                 mask: dict[str, torch.Tensor] | None = None) -> dict[str, float]:
        model.eval()
        outs = [model({m: v[s:s + 256] for m, v in x.items()},
                      None if mask is None else {m: v[s:s + 256] for m, v in mask.items()})
                for s in range(0, len(y), 256)]
        loss = sum(float(self.loss(o, y[s * 256:(s + 1) * 256])) * len(o.logits) for s, o in enumerate(outs)) / len(y)
        pred = torch.cat([one_model_prediction(o)[0].argmax(-1) for o in outs])
        row = {"heldout_loss": loss, "heldout_acc": float((pred == y).float().mean())}
        for m in model.modalities:
            hits = torch.cat([((o.unimodal_logits[m].argmax(-1) == y[s * 256:(s + 1) * 256]) & o.present[m]).float()
                              for s, o in enumerate(outs)]).sum()
            n = torch.cat([o.present[m] for o in outs]).sum()
            row[f"heldout_acc_{m}"] = float(hits / n) if int(n) else float("nan")
        return row

    def predict_frame(self, model: CoReSleepModel, ds: MultimodalDataset, idx: np.ndarray | None = None, *,
                      mask: dict[str, torch.Tensor] | None = None,
                      split_labels: np.ndarray | None = None) -> pd.DataFrame:
        return predict_epochs(model, ds, idx, mask=mask, split_labels=split_labels)

    def prediction_columns(self, modalities: list[str]) -> list[str]:
        return ["sample", "position", "y", "pred", "head", "split", *(f"pred_{m}" for m in modalities)]

    def metrics(self, predictions: pd.DataFrame, modalities: list[str]) -> dict:
        out: dict[str, dict] = {}
        for split, part in predictions.groupby("split"):
            out[str(split)] = staging_metrics(part, modalities)
        return out

    def score_table(self, predictions: pd.DataFrame, modalities: list[str]) -> pd.DataFrame:
        rows = []
        for split, part in predictions.groupby("split", sort=False):
            scores = staging_metrics(part, modalities)
            rows.append({"split": split, "model": "fused", "kind": "one model (combined where >= 2 present)",
                         "accuracy": scores["fused"], "n": scores["n"], "measure": "epoch accuracy"})
            for m in modalities:
                rows.append({"split": split, "model": m, "kind": "unimodal head", "accuracy": scores[m],
                             "n": int((part[f"pred_{m}"] >= 0).sum()), "measure": "epoch accuracy"})
        return pd.DataFrame(rows, columns=["split", "model", "kind", "accuracy", "n", "measure"])


def staging_metrics(predictions: pd.DataFrame, modalities: list[str]) -> dict:
    """Accuracy (``fused``), macro-F1 and Cohen's kappa of ``pred`` over the epochs that got a
    prediction, and the accuracy of each head on its present epochs; ``n`` epochs.

    Examples
    --------
    >>> frame = pd.DataFrame({"y": [0, 1, 1, 2], "pred": [0, 1, 2, 2], "pred_a": [0, 1, -1, 2]})
    >>> m = staging_metrics(frame, ["a"])
    >>> m["fused"], m["a"], m["n"]
    (0.75, 1.0, 4)
    """
    scored = predictions[predictions["pred"] >= 0]
    y, pred = scored["y"].to_numpy(), scored["pred"].to_numpy()
    out = {"fused": float((y == pred).mean()) if len(y) else float("nan"),
           "macro_f1": float(f1_score(y, pred, average="macro")) if len(y) else float("nan"),
           "kappa": float(cohen_kappa_score(y, pred)) if len(np.unique(np.r_[y, pred])) > 1 else float("nan"),
           "n": len(predictions)}
    for m in modalities:
        part = predictions[predictions[f"pred_{m}"] >= 0]
        out[m] = float((part[f"pred_{m}"] == part["y"]).mean()) if len(part) else float("nan")
    return out


@torch.no_grad()
def predict_epochs(model: CoReSleepModel, ds: MultimodalDataset, idx: np.ndarray | None = None, *,
                   mask: dict[str, torch.Tensor] | None = None, split_labels: np.ndarray | None = None,
                   batch_size: int = 128) -> pd.DataFrame:
    """One row per epoch of the sequences at ``idx``: ``sample, position, y, pred, head, p_true,
    p_<c>``, per modality ``present_<m>, pred_<m>, p_true_<m>``, ``split`` and ``group_<g>``.

    ``mask`` (``modality -> bool[len(idx)]`` or ``bool[len(idx), L]``) hides modalities on top of
    the dataset's own presence mask (e.g. ``{"eog": zeros}``: test EEG-only).
    """
    model.eval()
    device = next(model.parameters()).device
    idx = np.arange(ds.n_samples) if idx is None else np.asarray(idx)
    names = model.modalities
    chunks = []
    for s in range(0, len(idx), batch_size):
        sl = torch.as_tensor(idx[s:s + batch_size], dtype=torch.long)
        xb = {m: ds.modalities[m][sl].to(device) for m in names}
        mb = {m: ds.presence(m)[sl].to(device) for m in names}
        if mask is not None:
            for m, v in mask.items():
                v = torch.as_tensor(v, dtype=torch.bool)[s:s + batch_size].to(device)
                mb[m] = (mb[m].unsqueeze(1) if v.dim() == 2 else mb[m]) & v
        out = model(xb, mb)
        logits, head = one_model_prediction(out)
        chunks.append((logits.float().softmax(-1).cpu(), head.cpu(),
                       {m: out.unimodal_logits[m].float().softmax(-1).cpu() for m in names},
                       {m: out.present[m].cpu() for m in names}))
    L = ds.y.shape[1]
    prob = torch.cat([c[0] for c in chunks]).reshape(-1, model.n_classes)
    head = torch.cat([c[1] for c in chunks]).reshape(-1).numpy()
    y = ds.y[torch.as_tensor(idx, dtype=torch.long)].reshape(-1)
    frame: dict[str, Any] = {"sample": np.repeat(idx, L), "position": np.tile(np.arange(L), len(idx)),
                             "y": y.numpy(), "pred": np.where(head >= 0, prob.argmax(1).numpy(), -1),
                             "head": np.array(["none", "combined", *names], dtype=object)[head + 1],
                             "p_true": prob.gather(1, y[:, None])[:, 0].numpy()}
    for c in range(model.n_classes):
        frame[f"p_{c}"] = prob[:, c].numpy()
    for m in names:
        pm = torch.cat([c[2][m] for c in chunks]).reshape(-1, model.n_classes)
        here = torch.cat([c[3][m] for c in chunks]).reshape(-1).numpy()
        frame[f"present_{m}"] = here
        frame[f"pred_{m}"] = np.where(here, pm.argmax(1).numpy(), -1)
        frame[f"p_true_{m}"] = np.where(here, pm.gather(1, y[:, None])[:, 0].numpy(), np.nan)
    if split_labels is not None:
        frame["split"] = np.repeat(np.asarray(split_labels)[idx], L)
    out = pd.DataFrame(frame)
    if ds.groups is not None:
        for g in ds.groups.columns:
            out[f"group_{g}"] = np.repeat(ds.groups[g].to_numpy()[idx], L)
    return out
