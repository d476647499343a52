"""Concatenation fusion: one linear layer over the concatenated embeddings."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from workbench.models.fusion.base import FusionHead, Keep, register_fusion


@register_fusion("concat")
class ConcatFusion(FusionHead):
    """``W [h_1; ...; h_M] + b``; column block ``m`` of ``W`` reads modality m.

    Examples
    --------
    >>> head = ConcatFusion(["a", "b"], {"a": 3, "b": 5}, 2, 4)
    >>> head.modality_columns("a"), head.modality_columns("b")
    (slice(0, 3, None), slice(3, 8, None))
    """

    def __init__(self, modalities, widths, n_classes, hidden, *, out_features: int | None = None):
        super().__init__(modalities, widths, n_classes, hidden)
        ends = list(itertools.accumulate(self.widths[m] for m in self.modalities))
        self._columns = {m: slice(end - self.widths[m], end) for m, end in zip(self.modalities, ends, strict=True)}
        self.fusion_head = nn.Linear(ends[-1], n_classes if out_features is None else out_features)

    def modality_columns(self, m: str) -> slice:
        return self._columns[m]

    def forward(self, emb, uni, present):
        return self.fusion_head(torch.cat([emb[m] for m in self.modalities], 1))

    def routed(self, emb, uni, keep: Keep, present):
        """The product ``W_m h_m`` is what is kept or detached, as the MCR authors' ``_forward_main``."""
        w = self.fusion_head.weight
        return self.fusion_head.bias + sum(keep(m, F.linear(emb[m], w[:, self.modality_columns(m)]))
                                           for m in self.modalities)
