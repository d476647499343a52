"""Late fusion: the fused logits are the mean of the unimodal heads' logits over present modalities."""

from __future__ import annotations

import torch

from workbench.models.fusion.base import FusionHead, Keep, register_fusion


@register_fusion("late")
class LateFusion(FusionHead):
    """Mean of the unimodal logits over present modalities; no parameters of its own.

    Its unimodal heads *are* the fused prediction's parts, so they are never trained as
    detached probes, and OGM-GE's per-modality logits are the unimodal logits.

    Examples
    --------
    >>> import torch
    >>> head = LateFusion(["a", "b"], {"a": 2, "b": 2}, 2, 4)
    >>> uni = {"a": torch.tensor([[2.0, 0.0]]), "b": torch.tensor([[0.0, 4.0]])}
    >>> head({}, uni, torch.tensor([[1.0, 0.0]])).tolist()
    [[2.0, 0.0]]
    """

    uses_unimodal = True

    def forward(self, emb, uni, present):
        stacked = torch.stack([uni[m] for m in self.modalities], 1)  # (n, M, C)
        w = present.unsqueeze(2)
        return (stacked * w).sum(1) / w.sum(1).clamp_min(1.0)

    def modality_logits(self, emb, uni):
        return dict(uni)

    def routed(self, emb, uni, keep: Keep, present):
        return self(emb, {m: keep(m, z) for m, z in uni.items()}, present)
