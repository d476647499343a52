"""``joint``: naive joint training under the config's optimizer, the balancing benchmark's baseline.

The naive joint-training loss (fused CE plus unimodal probes on detached embeddings, see
:mod:`workbench.strategies.naive`) under its own name, so that benchmark tables read "joint" for
the baseline trained with the same optimizer as the methods it is compared with
(``TrainConfig(optimizer="sgd", lr=..., momentum=...)``; SGD with momentum is the optimizer of
the OGM-GE paper, Peng et al., CVPR 2022).

Example
-------
>>> from workbench.strategies.base import make_strategy
>>> type(make_strategy("joint")).__name__, make_strategy("joint").params()
('Joint', {'unimodal_weight': 1.0})
"""

from __future__ import annotations

from workbench.strategies.base import register_strategy
from workbench.strategies.naive import Naive


@register_strategy("joint")
class Joint(Naive):
    """Naive joint training (fused CE + detached unimodal probes) under the config's optimizer."""
