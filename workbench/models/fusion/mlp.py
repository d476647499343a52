"""MLP fusion: a non-linear joint layer over the concatenated embeddings.

``W_2 relu(W_1 [h_1; ...; h_M] + b_1) + b_2`` with ``hidden`` units (``fusion_head`` is ``W_1``,
whose column block ``m`` reads modality m as in ``concat``; ``fusion_out`` is ``W_2``). The only
built-in head whose logits are not additive in the modalities' embeddings (late/concat/sum are;
gated is additive given the gate), so the only one that can represent an interaction such as
XOR between modalities (``synthetic-xor``: >= 0.85 of Bayes 0.875, the others about 0.5-0.7).
It is the "nonlinear" classifier of the MCR/MLB authors' code (per-modality projections summed,
ReLU, linear) with one hidden layer and no dropout.
"""

from __future__ import annotations

import torch
from torch import nn

from workbench.models.fusion.base import Keep, register_fusion
from workbench.models.fusion.concat import ConcatFusion


@register_fusion("mlp")
class MLPFusion(ConcatFusion):
    """``fusion_out(relu(fusion_head([h_1; ...; h_M])))``; ``fusion_head`` is not a classifier.

    Examples
    --------
    >>> import torch
    >>> head = MLPFusion(["a", "b"], {"a": 2, "b": 2}, 3, 8)
    >>> head.fusion_head.out_features, head.linear
    (8, False)
    """

    linear = False

    def __init__(self, modalities, widths, n_classes, hidden):
        super().__init__(modalities, widths, n_classes, hidden, out_features=hidden)
        self.fusion_out = nn.Linear(hidden, n_classes)

    def forward(self, emb, uni, present):
        return self.fusion_out(torch.relu(super().forward(emb, uni, present)))

    def routed(self, emb, uni, keep: Keep, present):
        return self.fusion_out(torch.relu(super().routed(emb, uni, keep, present)))
