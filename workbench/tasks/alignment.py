"""Alignment (contrastive retrieval): ConFu's objective over every pair and every fused pair.

ConFu, "Contrastive Fusion", arXiv 2511.21331 (authors' code ``src/modules/models/confu.py``):
encoders give ``e_m``; unimodal embeddings ``z_m = normalize(W_m e_m)`` on a shared sphere of
dimension ``dim``; a fused pair ``z_ij = normalize(MLP_ij([e_i || e_j]))`` on the *pre-projection*
encoder features (2 layers, hidden 512, dropout 0.1). With the symmetric InfoNCE

    L_NCE(A, B) = 1/2 [CE(A B^T / tau, I) + CE(B A^T / tau, I)],   tau = 0.07 fixed (not learned),

the authors' loss for three modalities (``pairwise_contrastive_loss``) is
``[lambda * (L(z12, z3) + L(z13, z2) + L(z23, z1)) + (1 - lambda) * (L(z1, z2) + L(z2, z3) + L(z3, z1))] / 6``
for ``lambda > 0`` and, in their code, ``(L(z1, z2) + L(z2, z3) + L(z3, z1)) / 3`` at ``lambda = 0``
(their CLIP baseline: the mean of the CLIP losses, a factor 2 above the formula's limit).

``normalization="authors"`` (default) is exactly that at M = 3 and, for any M >= 3 (our
generalisation), divides the weighted sum by the number of terms: every pair (i, j), and every
fused pair aligned with every modality outside it (``C(M,2) + C(M,2)(M-2)`` terms; 6 at M = 3);
``lambda = 0`` is the mean of the pair terms. ``normalization="mean"`` is
``lambda * mean(fused terms) + (1 - lambda) * mean(pair terms)``, continuous in ``lambda`` and
twice the authors' value at M = 3 for ``lambda > 0``. The two differ by a constant factor for a
given ``lambda``, to which Adam's update is invariant up to its epsilon (AdamW's decoupled decay
is not: its relative strength doubles with the smaller loss). M = 2 has no fused term: CLIP.

Negatives are the other items of the batch, so ``batch_size`` matters. Missing modalities are not
supported by this task (a one-line error before training): every term needs both sides present.
The authors train with AdamW (lr 1e-4, weight decay 1e-4) and a per-epoch cosine schedule down
to 1e-6: ``train(..., optimizer="adamw", schedule="cosine", lr=1e-4, weight_decay=1e-4)`` (the
config's ``lr_min`` defaults to 1e-6).

Example
-------
>>> import torch
>>> z = torch.eye(4)
>>> round(float(info_nce(z, z, tau=1.0)), 6) == round(float(torch.log(1 + 3 * torch.exp(torch.tensor(-1.0)))), 6)
True
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from workbench.data import MultimodalDataset
from workbench.models.encoders import ModalitySpec, encoder_width, make_encoder
from workbench.models.multimodal import MultimodalModel
from workbench.stats.retrieval import partner_ranks
from workbench.tasks.base import Task, register_task

__all__ = ["AlignmentModel", "AlignmentOutput", "AlignmentTask", "confu_loss", "info_nce"]


def info_nce(a: torch.Tensor, b: torch.Tensor, *, tau: float = 0.07) -> torch.Tensor:
    """Symmetric InfoNCE of two batches of (unit) embeddings whose row i are partners."""
    logits = a.float() @ b.float().T / tau
    target = torch.arange(len(a), device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def pair_name(i: str, j: str) -> str:
    return f"{i}+{j}"


@dataclass
class AlignmentOutput:
    """Unit embeddings per modality (``z``) and per fused pair (``pairs``, keyed ``"a+b"``)."""

    z: dict[str, torch.Tensor]
    pairs: dict[str, torch.Tensor]


NORMALIZATIONS = ("authors", "mean")


def confu_loss(out: AlignmentOutput, *, lam: float = 0.5, tau: float = 0.07,
               normalization: str = "authors") -> torch.Tensor:
    """ConFu's objective; ``normalization`` as in the module docstring (``"authors"``: their
    ``/ 6`` at M = 3, the number of terms in general)."""
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"alignment normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    names = list(out.z)
    pair_terms = torch.stack([info_nce(out.z[i], out.z[j], tau=tau) for i, j in itertools.combinations(names, 2)])
    fused = [info_nce(z, out.z[k], tau=tau) for p, z in out.pairs.items() for k in names if k not in p.split("+")]
    if not fused or lam == 0:
        return pair_terms.mean()
    fused_terms = torch.stack(fused)
    if normalization == "mean":
        return lam * fused_terms.mean() + (1 - lam) * pair_terms.mean()
    return (lam * fused_terms.sum() + (1 - lam) * pair_terms.sum()) / (len(fused_terms) + len(pair_terms))


class AlignmentModel(nn.Module):
    """Encoders (the registry's, or yours), a projection per modality, a fused-pair MLP per pair."""

    # the same input standardisation as the classification model (training-set buffers)
    set_standardization = MultimodalModel.set_standardization
    standardize = MultimodalModel.standardize

    def __init__(self, specs: dict[str, ModalitySpec], *, dim: int = 256, hidden: int = 128, embed: int = 64,
                 dropout: float = 0.1, pair_hidden: int = 512, pair_dropout: float = 0.1,
                 fused_pairs: bool = True, encoders: dict[str, nn.Module] | None = None):
        super().__init__()
        given = dict(encoders or {})
        self.modalities, self.specs = list(specs), dict(specs)
        self.encoders = nn.ModuleDict({m: given[m] if m in given else
                                       make_encoder(s, hidden=hidden, embed=embed, dropout=dropout)
                                       for m, s in specs.items()})
        widths = {m: encoder_width(self.encoders[m], s) for m, s in specs.items()}
        self.projections = nn.ModuleDict({m: nn.Linear(widths[m], dim) for m in specs})
        pairs = itertools.combinations(self.modalities, 2) if fused_pairs and len(specs) > 2 else []
        self.pair_heads = nn.ModuleDict({
            pair_name(i, j): nn.Sequential(nn.Linear(widths[i] + widths[j], pair_hidden), nn.ReLU(),
                                           nn.Dropout(pair_dropout), nn.Linear(pair_hidden, dim))
            for i, j in pairs})
        for m, s in specs.items():
            self.register_buffer(f"mean_{m}", torch.zeros(s.shape))
            self.register_buffer(f"std_{m}", torch.ones(s.shape))

    def forward(self, x: dict[str, torch.Tensor], mask: dict[str, torch.Tensor] | None = None, *,
                detach_unimodal: bool = False) -> AlignmentOutput:
        e = {m: self.encoders[m](self.standardize(m, x[m])) for m in self.modalities}
        z = {m: F.normalize(self.projections[m](e[m]).float(), dim=-1) for m in self.modalities}
        pairs = {p: F.normalize(head(torch.cat([e[a] for a in p.split("+")], -1)).float(), dim=-1)
                 for p, head in self.pair_heads.items()}
        return AlignmentOutput(z, pairs)


@register_task("alignment")
class AlignmentTask(Task):
    """ConFu alignment (``lam=0``: CLIP over every pair; ``fused_pairs=False`` drops the pair heads).

    Parameters
    ----------
    lam : float
        Weight of the fused-pair terms (default 0.5, the authors').
    tau : float
        Fixed temperature (default 0.07).
    dim : int
        Dimension of the shared sphere (default 256).
    fused_pairs : bool
        Train the fused-pair heads (default True; needs >= 3 modalities).
    normalization : {"authors", "mean"}
        How the terms are combined (module docstring).

    Examples
    --------
    >>> from workbench import load_dataset, train
    >>> ds = load_dataset("xor-trimodal", n=512, d=2, p=1.0, seed=0)
    >>> run = train(ds, task="alignment", task_params={"dim": 16}, optimizer="adamw", schedule="cosine",
    ...             epochs=2, save=False, progress=False)
    >>> sorted(run.metrics["test"])[:3]
    ['n', 'r10_1to1', 'r1_1to1']
    """

    train_metric = "top1"

    def __init__(self, *, lam: float = 0.5, tau: float = 0.07, dim: int = 256, fused_pairs: bool = True,
                 normalization: str = "authors"):
        if not 0 <= lam <= 1:
            raise ValueError(f"alignment lam must be in [0, 1], got {lam!r}")
        if not tau > 0:
            raise ValueError(f"alignment tau must be > 0, got {tau!r}")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"alignment normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
        self.lam, self.tau, self.dim, self.fused_pairs = float(lam), float(tau), int(dim), bool(fused_pairs)
        self.normalization = normalization

    def params(self) -> dict:
        return {"lam": self.lam, "tau": self.tau, "dim": self.dim, "fused_pairs": self.fused_pairs,
                "normalization": self.normalization}

    def check_dataset(self, ds: MultimodalDataset) -> None:
        if len(ds.modality_names) < 2:
            raise ValueError(f"dataset {ds.name!r} has {len(ds.modality_names)} modality; alignment needs >= 2")
        if ds.mask is not None and not all(bool(v.all()) for v in ds.mask.values()):
            absent = [m for m, v in ds.mask.items() if not bool(v.all())]
            raise ValueError(f"dataset {ds.name!r}: alignment needs every modality present, {absent} are missing "
                             "for some samples")

    def build_model(self, *, shapes: Mapping[str, tuple[int, ...]], kinds: Mapping[str, str], n_classes: int,
                    config: Mapping[str, Any], encoders: dict[str, nn.Module] | None = None) -> AlignmentModel:
        specs = {m: ModalitySpec(kinds[m], tuple(shapes[m])) for m in shapes}
        return AlignmentModel(specs, dim=self.dim, hidden=config["hidden"], embed=config["embed"],
                              dropout=config["dropout"], fused_pairs=self.fused_pairs, encoders=encoders)

    def loss(self, out: AlignmentOutput, y: torch.Tensor, mask: dict[str, torch.Tensor] | None = None, *,
             unimodal_weight: float = 1.0) -> torch.Tensor:
        return confu_loss(out, lam=self.lam, tau=self.tau, normalization=self.normalization)

    def batch_statistic(self, out: AlignmentOutput, y: torch.Tensor) -> torch.Tensor:
        """In-batch top-1 hits of the first modality's queries against the second's gallery."""
        a, b = list(out.z.values())[:2]
        return ((a @ b.T).argmax(1) == torch.arange(len(a), device=a.device)).sum()

    @torch.no_grad()
    def evaluate(self, model: AlignmentModel, x: dict[str, torch.Tensor], y: torch.Tensor,
                 mask: dict[str, torch.Tensor] | None = None) -> dict[str, float]:
        model.eval()
        out = model(x, mask)
        a, b = list(out.z.values())[:2]
        top1 = float(((a @ b.T).argmax(1) == torch.arange(len(a), device=a.device)).float().mean())
        return {"heldout_loss": float(confu_loss(out, lam=self.lam, tau=self.tau,
                                                            normalization=self.normalization)), "heldout_top1": top1}

    @torch.no_grad()
    def embed(self, model: AlignmentModel, ds: MultimodalDataset, idx: np.ndarray | None = None, *,
              batch_size: int = 4096) -> AlignmentOutput:
        """Embeddings of ``ds[idx]`` as CPU tensors (eval mode, in batches)."""
        model.eval()
        device = next(model.parameters()).device
        idx = np.arange(ds.n_samples) if idx is None else np.asarray(idx)
        parts = []
        for s in range(0, len(idx), batch_size):
            sl = torch.as_tensor(idx[s : s + batch_size], dtype=torch.long)
            out = model({m: ds.modalities[m][sl].to(device) for m in model.modalities})
            parts.append(out)
        return AlignmentOutput({m: torch.cat([p.z[m].cpu() for p in parts]) for m in model.modalities},
                               {q: torch.cat([p.pairs[q].cpu() for p in parts]) for q in model.pair_heads})

    def predict_frame(self, model: AlignmentModel, ds: MultimodalDataset, idx: np.ndarray | None = None, *,
                      mask: dict[str, torch.Tensor] | None = None,
                      split_labels: np.ndarray | None = None) -> pd.DataFrame:
        """One row per sample: ``sample, y, split`` and the embeddings as ``z_<name>_<k>`` columns."""
        idx = np.arange(ds.n_samples) if idx is None else np.asarray(idx)
        out = self.embed(model, ds, idx)
        frame: dict[str, Any] = {"sample": idx, "y": ds.y.numpy()[idx]}
        if split_labels is not None:
            frame["split"] = split_labels[idx]
        for name, z in {**out.z, **out.pairs}.items():
            for k in range(z.shape[1]):
                frame[f"z_{name}_{k}"] = z[:, k].numpy()
        return pd.DataFrame(frame)

    def prediction_columns(self, modalities: list[str]) -> list[str]:
        return ["sample", "y", "split", *(f"z_{m}_0" for m in modalities)]

    def metrics(self, predictions: pd.DataFrame, modalities: list[str]) -> dict:
        """Per split: mean 1->1 Recall@1 and Recall@10 over every direction (and 2->1 when pairs exist)."""
        out: dict[str, dict] = {}
        for split, part in predictions.groupby("split"):
            z = embeddings_from_frame(part)
            one = [partner_ranks(z[a], z[b]) for a in modalities for b in modalities if a != b]
            row = {"r1_1to1": float(np.mean([(r <= 1).mean() for r in one])),
                   "r10_1to1": float(np.mean([(r <= 10).mean() for r in one])), "n": len(part)}
            fused = [partner_ranks(z[p], z[m]) for p in z if "+" in p for m in modalities if m not in p.split("+")]
            if fused:
                row["r1_2to1"] = float(np.mean([(r <= 1).mean() for r in fused]))
            out[str(split)] = row
        return out


    def score_table(self, predictions: pd.DataFrame, modalities: list[str]) -> pd.DataFrame:
        """Top-1 retrieval accuracy (Recall@1) of every 1->1 direction and every fused pair towards
        each modality outside it, per split."""
        rows = []
        for split, part in predictions.groupby("split", sort=False):
            z = embeddings_from_frame(part)
            directions = [(a, b, "1->1") for a in modalities for b in modalities if a != b]
            directions += [(p, m, "2->1") for p in z if "+" in p for m in modalities if m not in p.split("+")]
            for q, g, kind in directions:
                rows.append({"split": str(split), "model": f"{q}->{g}", "kind": kind,
                             "accuracy": float((partner_ranks(z[q], z[g]) <= 1).mean()), "n": len(part),
                             "measure": "top-1 retrieval accuracy (R@1)"})
        return pd.DataFrame(rows)


def embeddings_from_frame(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """``name -> (n, d)`` arrays from the ``z_<name>_<k>`` columns of :meth:`AlignmentTask.predict_frame`."""
    names: dict[str, list[str]] = {}
    for col in frame.columns:
        if col.startswith("z_"):
            name, _, _ = col[2:].rpartition("_")
            names.setdefault(name, []).append(col)
    return {n: frame[cols].to_numpy(np.float32) for n, cols in names.items()}
