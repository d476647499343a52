"""``joint``: naive joint training with a choice of optimizer, the baseline of the balancing benchmark.

The naive joint-training loss (fused CE plus unimodal probes on detached embeddings, see
:mod:`workbench.strategies.naive`) with ``optimizer="sgd"`` available, so that the naive baseline
runs under the same optimizer as the methods it is compared with (SGD with momentum is the
optimizer of the OGM-GE paper, Peng et al., CVPR 2022).

Example
-------
>>> from workbench.strategies.base import make_strategy
>>> make_strategy("joint", optimizer="sgd").params()["optimizer"]
'sgd'
"""

from __future__ import annotations

from workbench.strategies.base import Strategy, TrainContext, register_strategy
from workbench.strategies.common import maybe_sgd


@register_strategy("joint")
class Joint(Strategy):
    """Naive joint training (fused CE + detached unimodal probes) with an optimizer choice."""

    def __init__(self, *, optimizer: str | None = None, sgd_lr: float = 0.02, sgd_momentum: float = 0.9,
                 unimodal_weight: float = 1.0):
        super().__init__(unimodal_weight=unimodal_weight)
        self.optimizer, self.sgd_lr, self.sgd_momentum = optimizer, sgd_lr, sgd_momentum

    def setup(self, ctx: TrainContext) -> None:
        maybe_sgd(ctx, self.optimizer, self.sgd_lr, self.sgd_momentum)
