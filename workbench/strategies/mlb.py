"""MLB: multi-loss balanced gradient modulation.

Kontras, Chatzichristos, Blaschko & De Vos, *Improving Multimodal Learning with Multi-Loss
Gradient Modulation*, BMVC 2024 (arXiv 2405.07930); IJCV 2025 extension *Self-Balancing
Multimodal Models via Multi-Loss Gradient Modulation*; code kkontras/MLB (``Bias_Infusion_MLB``);
method note ``shared/methods/imbalance.md`` section C.

Equations::

    L   = w_f CE(z_f, y) + sum_m w_m CE(z^_m, y)         (w = 1; z^_m from m's own unimodal head)
    s_m = mean_{i in B} softmax(z^_m,i)[y_i]              (no gradient)
    r_m = (1/(M-1)) sum_{j != m} s_j / s_m               (r_m > 1: m is the weaker modality)
    beta_m = beta_max if r_m > 1 else 2
    k_m = 1 + (beta_m - 1) tanh(alpha (r_m - 1))         (k in (0, beta_max))

The weak modality is accelerated (``k > 1``), the strong one decelerated (``k < 1``). With
``beta_max = 2`` this is the BMVC form ``k = 1 + tanh(alpha (r - 1))``; ``beta_max > 2`` is the
IJCV form (code ``tanh_mode 2``). ``beta_max <= 1`` is allowed, as in the authors' release
``run.sh`` (UCF: ``tanh_mode_beta 0.5``; AVE: 1): ``beta_max = 1`` switches acceleration off
(``k = 1`` for weaker modalities) and ``beta_max < 1`` *decelerates* the weaker modality too,
to ``k in (beta_max, 1)``, while the stronger one is slowed as before; ``k`` stays positive for
any ``beta_max > 0``. There is no explicit schedule: once every unimodal head
fits the training set, ``s_m -> 1``, ``r_m -> 1`` and ``k_m -> 1`` (phase-out).

Scaled gradients (after backward, before the optimizer step, no noise): every parameter of
modality ``m``'s encoder and unimodal head, and for concat fusion the columns of the fusion
layer's weight that read ``m``'s embedding (the code's ``fc_m_lin.weight``; for ``mlp`` fusion
the joint layer's block, as ``fc_m_lin`` in the code's non-linear classifier). For sum/gated
fusion the fusion layer is shared and left unscaled. [CHOICE]

Defaults (configs): ``alpha = 0.8``, ``beta_max = 2``. The authors train with Adam; we keep
the trainer's Adam unless ``TrainConfig(optimizer="sgd")``.

Example
-------
>>> mlb_coefficients({"a": 0.9, "b": 0.3}, alpha=0.8)["b"] > 1
True
"""

from __future__ import annotations

import math

import numpy as np
import torch

from workbench.models.multimodal import ModelOutput
from workbench.strategies.base import Batch, Strategy, TrainContext, register_strategy
from workbench.strategies.common import fusion_block, true_class_score


def mlb_coefficients(scores: dict[str, float], *, alpha: float = 0.8, beta_max: float = 2.0) -> dict[str, float]:
    """``k_m = 1 + (beta_m - 1) tanh(alpha (r_m - 1))`` with ``r_m = mean_{j != m} s_j / s_m``.

    Examples
    --------
    >>> k = mlb_coefficients({"a": 0.5, "b": 0.5})
    >>> k["a"], k["b"]
    (1.0, 1.0)
    """
    if len(scores) < 2:
        raise ValueError(f"MLB needs at least two modalities, got {list(scores)}")
    out = {}
    for m, s in scores.items():
        r = float(np.mean([v for j, v in scores.items() if j != m]) / max(s, 1e-12))
        beta = beta_max if r > 1 else 2.0
        out[m] = 1.0 + (beta - 1.0) * math.tanh(alpha * (r - 1.0))
    return out


@register_strategy("mlb")
class MLB(Strategy):
    """Multi-loss balanced gradient modulation (see the module docstring)."""

    graph_safe = False
    detach_unimodal = False  # the unimodal losses train the encoders (multi-loss)

    def __init__(self, *, alpha: float = 0.8, beta_max: float = 2.0, unimodal_weight: float = 1.0):
        super().__init__(unimodal_weight=unimodal_weight)
        if alpha < 0:
            raise ValueError(f"MLB: alpha must be >= 0, got {alpha}")
        if beta_max <= 0:
            raise ValueError(f"MLB: beta_max must be > 0 (the authors' UCF run uses 0.5), got {beta_max}")
        self.alpha, self.beta_max = alpha, beta_max
        self._log: dict[str, list[float]] = {}

    def scaled_parameters(self, ctx: TrainContext, m: str) -> list[torch.nn.Parameter]:
        model = ctx.model
        return list(model.encoders[m].parameters()) + list(model.unimodal_heads[m].parameters())

    @torch.no_grad()
    def after_backward(self, ctx: TrainContext, batch: Batch, out: ModelOutput) -> None:
        scores = {m: float(true_class_score(z, batch.y).mean()) for m, z in out.unimodal_logits.items()}
        k = mlb_coefficients(scores, alpha=self.alpha, beta_max=self.beta_max)
        model = ctx.model
        for m, coeff in k.items():
            for p in self.scaled_parameters(ctx, m):
                if p.grad is not None:
                    p.grad.mul_(coeff)
            joint = model.fusion_module.joint  # m's own column block of the fusion layer, if it has one
            if joint is not None and not model.fusion_module.shared and joint.weight.grad is not None:
                joint.weight.grad[:, fusion_block(model, m)] *= coeff
            self._log.setdefault(f"mlb_k_{m}", []).append(coeff)

    def on_epoch_end(self, ctx: TrainContext, epoch: int, row: dict) -> None:
        for key, values in self._log.items():
            row[key] = float(np.mean(values))
            row[key.replace("mlb_k_", "mlb_k_last_")] = float(values[-1])
        self._log = {}
