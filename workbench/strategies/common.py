"""Helpers shared by the balancing strategies: per-modality scores, parameter routing, per-encoder
optimizer groups (the optimizer itself is :class:`~workbench.training.config.TrainConfig`'s ``optimizer``)."""

from __future__ import annotations

import torch

from workbench.models.multimodal import ModelOutput, MultimodalModel


def true_class_score(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``softmax(logits)[y]`` per sample, in float32, without gradient."""
    return logits.detach().float().softmax(1).gather(1, y[:, None])[:, 0]


def fusion_block(model: MultimodalModel, m: str) -> slice:
    """Columns of the fusion head's joint layer's weight that read modality ``m``'s embedding
    (declared by the head: :meth:`~workbench.models.fusion.FusionHead.modality_columns`)."""
    return model.fusion_module.modality_columns(m)


def fusion_slice_logits(model: MultimodalModel, out: ModelOutput) -> dict[str, torch.Tensor]:
    """Per-modality logits read from the fusion head, as OGM-GE does.

    ``concat``: ``z_m = W[:, block_m] h_m + b / M``; ``sum``/``gated``: ``z_m = W h_m + b / M``
    (the shared layer applied to one embedding); ``late``: the unimodal heads, which *are*
    the fused prediction's parts (:meth:`~workbench.models.fusion.FusionHead.modality_logits`).
    """
    return model.fusion_module.modality_logits(out.embeddings, out.unimodal_logits)


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


@torch.no_grad()
def unimodal_true_scores(model, x: dict[str, torch.Tensor], y: torch.Tensor, mask=None,
                         batch_size: int = 4096) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """True-class probability and argmax of every unimodal head, in eval mode (``(n,)`` tensors)."""
    was_training = model.training
    model.eval()
    p, pred = {m: [] for m in model.modalities}, {m: [] for m in model.modalities}
    n = len(y)
    for s in range(0, n, batch_size):
        xb = {m: t[s:s + batch_size] for m, t in x.items()}
        mb = None if mask is None else {m: v[s:s + batch_size] for m, v in mask.items()}
        out = model(xb, mb)
        for m, z in out.unimodal_logits.items():
            prob = z.float().softmax(1)
            p[m].append(prob.gather(1, y[s:s + batch_size, None])[:, 0])
            pred[m].append(prob.argmax(1))
    model.train(was_training)
    return {m: torch.cat(v) for m, v in p.items()}, {m: torch.cat(v) for m, v in pred.items()}
