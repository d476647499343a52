"""Helpers shared by the balancing strategies: per-modality scores, parameter routing, per-encoder
optimizer groups (the optimizer itself is :class:`~workbench.training.config.TrainConfig`'s ``optimizer``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from workbench.models.multimodal import ModelOutput, MultimodalModel


def true_class_score(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``softmax(logits)[y]`` per sample, in float32, without gradient."""
    return logits.detach().float().softmax(1).gather(1, y[:, None])[:, 0]


def fusion_block(model: MultimodalModel, m: str) -> slice:
    """Columns of the concat (or mlp joint) fusion layer's weight that read modality ``m``'s embedding."""
    width = model.fusion_head.in_features // len(model.modalities)
    j = model.modalities.index(m)
    return slice(j * width, (j + 1) * width)


def fusion_slice_logits(model: MultimodalModel, out: ModelOutput) -> dict[str, torch.Tensor]:
    """Per-modality logits read from the fusion head, as OGM-GE does.

    ``concat``: ``z_m = W[:, block_m] h_m + b / M``; ``sum``/``gated``: ``z_m = W h_m + b / M``
    (the shared layer applied to one embedding); ``late``: the unimodal heads, which *are*
    the fused prediction's parts.
    """
    if model.fusion == "late":
        return dict(out.unimodal_logits)
    if model.fusion == "mlp":
        raise ValueError("fusion 'mlp' has no per-modality logits to slice (its joint layer is non-linear); "
                         "use concat, sum, gated or late fusion with OGM-GE")
    head = model.fusion_head
    bias = head.bias / len(model.modalities)
    res = {}
    for m in model.modalities:
        w = head.weight[:, fusion_block(model, m)] if model.fusion == "concat" else head.weight
        res[m] = F.linear(out.embeddings[m], w) + bias
    return res


def modulated_tensors(model: MultimodalModel, m: str) -> list[torch.nn.Parameter]:
    """Weight tensors (``dim >= 2``: linear and convolution kernels) of modality ``m``'s encoder."""
    return [p for p in model.encoder_parameters(m) if p.dim() >= 2]


def per_modality_optimizer(ctx) -> tuple[torch.optim.Optimizer, dict[str, dict]]:
    """The same optimizer rebuilt with one parameter group per encoder (plus one for the rest),
    so a strategy can scale one encoder's learning rate; returns it and ``{m: group}``."""
    old = ctx.optimizer
    keep = ("lr", "weight_decay", "momentum", "betas", "eps", "fused", "foreach")
    defaults = {k: v for k, v in old.defaults.items() if k in keep}
    model = ctx.model
    seen: set[int] = set()
    groups = []
    for m in model.modalities:
        params = model.encoder_parameters(m)
        seen.update(id(p) for p in params)
        groups.append({"params": params, "modality": m})
    rest = [p for p in model.parameters() if id(p) not in seen]
    groups.append({"params": rest, "modality": None})
    new = type(old)(groups, **defaults)
    for g in new.param_groups:
        g["base_lr"] = g["lr"]
    return new, {g["modality"]: g for g in new.param_groups if g["modality"] is not None}
