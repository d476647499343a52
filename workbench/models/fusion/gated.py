"""Gated fusion: a softmax gate over modalities, a linear layer over the gated sum."""

from __future__ import annotations

import torch
from torch import nn

from workbench.models.fusion.base import register_fusion
from workbench.models.fusion.sum import SumFusion


@register_fusion("gated")
class GatedFusion(SumFusion):
    """``W sum_m g_m h_m + b`` with ``g = softmax_m(v . h_m)`` over present modalities
    (absent modalities get zero gate; a sample with none gets zero logits plus ``b``).

    Examples
    --------
    >>> import torch
    >>> head = GatedFusion(["a", "b"], {"a": 4, "b": 4}, 2, 8)
    >>> head({"a": torch.randn(3, 4), "b": torch.randn(3, 4)}, {}, torch.ones(3, 2)).shape
    torch.Size([3, 2])
    """

    def __init__(self, modalities, widths, n_classes, hidden):
        super().__init__(modalities, widths, n_classes, hidden)
        self.gate = nn.Linear(self._same_widths(), 1, bias=False)  # a shared bias cancels in the softmax

    def forward(self, emb, uni, present):
        hs = torch.stack([emb[m] for m in self.modalities], 1)  # (n, M, E)
        scores = self.gate(hs).squeeze(2).masked_fill(present == 0, float("-inf"))
        gate = torch.softmax(scores, 1).nan_to_num(0.0)  # all-absent rows -> zero gate
        return self.fusion_head((gate.unsqueeze(2) * hs).sum(1))
