"""Naive joint training, the default strategy: fused cross-entropy plus unimodal probe losses.

Loss ``CE(z_fused, y) + w_uni * sum_m CE(z_m, y)``, where ``z_m`` comes from modality m's
unimodal head on the *detached* embedding: a linear probe trained alongside, so the encoders
see only the fused loss and the probes measure what each encoder learned without shaping it
(the "joint training" baseline of the imbalance papers, e.g. Peng et al., CVPR 2022). For
any other task it is that task's own loss, unchanged.

Example
-------
>>> from workbench.strategies.base import make_strategy
>>> strategy = make_strategy("naive", unimodal_weight=0.5)
>>> type(strategy).__name__, strategy.params(), strategy.graph_safe
('Naive', {'unimodal_weight': 0.5}, True)
"""

from __future__ import annotations

from workbench.strategies.base import Strategy, register_strategy


@register_strategy("naive")
class Naive(Strategy):
    """Naive joint training: the :class:`~workbench.strategies.base.Strategy` base's hooks, unchanged.

    It uses only the task's own loss, so it trains every task (alignment, ranking, ...) too.
    """

    tasks = None
