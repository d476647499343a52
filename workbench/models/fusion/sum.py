"""Sum fusion: one linear layer over the sum of the embeddings."""

from __future__ import annotations

import torch
from torch import nn

from workbench.models.fusion.base import FusionHead, register_fusion


@register_fusion("sum")
class SumFusion(FusionHead):
    """``W (h_1 + ... + h_M) + b``: every modality reads every column of ``W`` (``shared``).

    Examples
    --------
    >>> head = SumFusion(["a", "b"], {"a": 4, "b": 4}, 2, 8)
    >>> head.modality_columns("b"), head.shared
    (slice(0, 4, None), True)
    """

    shared = True

    def __init__(self, modalities, widths, n_classes, hidden):
        super().__init__(modalities, widths, n_classes, hidden)
        self.fusion_head = nn.Linear(self._same_widths(), n_classes)

    def modality_columns(self, m: str) -> slice:
        return slice(0, self.fusion_head.in_features)

    def forward(self, emb, uni, present):
        return self.fusion_head(torch.stack([emb[m] for m in self.modalities], 1).sum(1))
