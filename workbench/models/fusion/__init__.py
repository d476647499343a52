"""Fusion heads, one module each, registered by :func:`register_fusion`; see :mod:`.base` for the interface.

Built-in: ``late``, ``concat``, ``sum``, ``gated``, ``mlp``. A new head is one module defining a
:class:`FusionHead` subclass decorated with ``@register_fusion("name")``.
"""

from workbench.models.fusion.base import (
    FUSIONS,
    FusionHead,
    available_fusions,
    make_fusion,
    register_fusion,
    unregister_fusion,
)
from workbench.models.fusion.concat import ConcatFusion
from workbench.models.fusion.gated import GatedFusion
from workbench.models.fusion.late import LateFusion
from workbench.models.fusion.mlp import MLPFusion
from workbench.models.fusion.sum import SumFusion

__all__ = ["FUSIONS", "ConcatFusion", "FusionHead", "GatedFusion", "LateFusion", "MLPFusion", "SumFusion",
           "available_fusions", "make_fusion", "register_fusion",
           "unregister_fusion"]
