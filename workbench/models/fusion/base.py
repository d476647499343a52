"""The fusion-head interface and registry: a fusion head is one module, registered by decorator.

A head maps the per-modality embeddings (and unimodal logits) to fused logits and *declares
which of its parameters read which modality*, so the strategies that act on "modality m's part
of the fusion layer" (OGM-GE's per-modality logits, MLB's gradient scaling, MCR's routed
gradient, MultiFair's gradient directions) ask the head instead of knowing each fusion:

``joint``
    The linear layer that reads the embeddings (``None`` if there is none, as in late fusion).
``modality_columns(m)``
    The columns of ``joint.weight`` that read modality ``m``'s embedding.
``shared``
    True when every modality reads the same columns (sum, gated), so no block is m's alone.
``linear``
    True when ``joint``'s output is the fused logits (a linear classifier on the embeddings).

A head's layers are registered on the model under the head's own attribute names
(``fusion_head``, ``fusion_out``, ``gate``), so a model's state-dict keys do not depend on the
head being a separate module (run folders and checkpoints written before the split still load).

Examples
--------
>>> import torch
>>> from workbench.models.fusion import make_fusion
>>> head = make_fusion("concat", ["a", "b"], {"a": 4, "b": 4}, n_classes=3, hidden=8)
>>> head.modality_columns("b")
slice(4, 8, None)
>>> emb = {"a": torch.randn(2, 4), "b": torch.randn(2, 4)}
>>> head(emb, {}, torch.ones(2, 2)).shape
torch.Size([2, 3])
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from workbench.plugins import Registry

Keep = Callable[[str, torch.Tensor], torch.Tensor]


class FusionHead(nn.Module):
    """Base of the fusion heads: fused logits from embeddings, plus the per-modality declarations.

    Parameters
    ----------
    modalities : list of str
        Modality names in the model's order.
    widths : dict of str to int
        Embedding width of each modality's encoder.
    n_classes : int
    hidden : int
        Width of a hidden joint layer, for heads that have one.
    """

    name: ClassVar[str] = ""
    linear: ClassVar[bool] = True
    shared: ClassVar[bool] = False
    uses_unimodal: ClassVar[bool] = False  # fused logits are built from the unimodal heads' logits

    def __init__(self, modalities: list[str], widths: dict[str, int], n_classes: int, hidden: int):
        super().__init__()
        self.modalities = list(modalities)
        self.widths = {m: int(widths[m]) for m in self.modalities}
        self.n_classes = n_classes

    @property
    def joint(self) -> nn.Linear | None:
        """The linear layer reading the embeddings, or None."""
        return getattr(self, "fusion_head", None)

    def modality_columns(self, m: str) -> slice:
        """Columns of :attr:`joint`'s weight that read modality ``m``'s embedding."""
        raise ValueError(f"fusion {self.name!r} has no joint layer reading the embeddings")

    def forward(self, emb: dict[str, torch.Tensor], uni: dict[str, torch.Tensor],
                present: torch.Tensor) -> torch.Tensor:
        """Fused logits from embeddings, unimodal logits and the ``(n, M)`` presence weights."""
        raise NotImplementedError

    def modality_logits(self, emb: dict[str, torch.Tensor], uni: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per-modality logits read from the head, as OGM-GE does: ``W[:, cols_m] h_m + b / M``."""
        head = self.joint
        if head is None or not self.linear:
            raise ValueError(f"fusion {self.name!r} has no per-modality logits to slice (its joint layer is "
                             "non-linear); use concat, sum, gated or late fusion with OGM-GE")
        bias = head.bias / len(self.modalities)
        return {m: F.linear(emb[m], head.weight[:, self.modality_columns(m)]) + bias for m in self.modalities}

    def routed(self, emb: dict[str, torch.Tensor], uni: dict[str, torch.Tensor], keep: Keep,
               present: torch.Tensor) -> torch.Tensor:
        """Fused logits in which ``keep(m, t)`` decides whether modality m's contribution carries
        gradient (MCR); by default its embedding is what is kept or detached."""
        return self({m: keep(m, z) for m, z in emb.items()}, uni, present)

    def _same_widths(self) -> int:
        widths = set(self.widths.values())
        if len(widths) != 1:
            raise ValueError(f"fusion {self.name!r} needs every modality's embedding to have one width, got "
                             f"{self.widths}; use concat, mlp or late fusion, or give the encoders one embed_dim")
        return widths.pop()


_REGISTRY: Registry[type[FusionHead]] = Registry("fusion", FusionHead)
_FUSIONS = _REGISTRY._entries  # name -> class, in registration order (what FUSIONS shows)
#: class decorator: make a :class:`FusionHead` subclass available as ``fusion=name``
register_fusion = _REGISTRY.register
#: forget a registered fusion head (no error if it is not registered)
unregister_fusion = _REGISTRY.unregister


def available_fusions() -> list[str]:
    """Registered fusion names, in registration order."""
    return _REGISTRY.names()


def make_fusion(name: str, modalities: list[str], widths: dict[str, int], *, n_classes: int,
                hidden: int) -> FusionHead:
    """Build the registered fusion head ``name``."""
    if name not in _FUSIONS:
        raise ValueError(f"unknown fusion {name!r}; choose one of {FUSIONS}")
    return _REGISTRY.get(name)(modalities, widths, n_classes, hidden)


class _LiveNames(Sequence):
    """The registered fusion names as a read-only sequence that follows later registrations."""

    def __getitem__(self, i):  # type: ignore[override]
        return tuple(_FUSIONS)[i]

    def __len__(self) -> int:
        return len(_FUSIONS)

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(_FUSIONS))

    def __contains__(self, name: object) -> bool:
        return name in _FUSIONS

    def __repr__(self) -> str:
        return repr(tuple(_FUSIONS))


FUSIONS: Sequence[str] = _LiveNames()
