"""Encoders: one per modality, chosen by the modality's kind from a registry, or brought by the user.

Built-in kinds
    ``vector``  : MLP ``d -> hidden -> embed`` (ReLU, dropout).
    ``sequence``: two 1-D convolutions over ``(channels, time)``, global average pooling.
    ``image``   : two 2-D convolutions with max pooling, global average pooling.

A new kind is one call, ``register_encoder(kind, factory)``, where ``factory(spec, hidden=,
embed=, dropout=)`` returns an ``nn.Module`` mapping ``(n, *spec.shape)`` to ``(n, width)``.
Any ``nn.Module`` can also be passed for one modality (``build_model(..., encoders={"audio":
module})``); its output width is its ``embed_dim`` attribute or, without one, read from a dry
forward pass on two zero samples (:func:`encoder_width`).

Example
-------
>>> import torch
>>> from torch import nn
>>> from workbench.models.encoders import ModalitySpec, encoder_width, make_encoder
>>> enc = make_encoder(ModalitySpec("vector", (5,)), hidden=16, embed=8, dropout=0.0)
>>> enc(torch.randn(3, 5)).shape
torch.Size([3, 8])
>>> encoder_width(nn.Sequential(nn.Flatten(), nn.Linear(5, 7)), ModalitySpec("vector", (5,)))
7
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ModalitySpec:
    """Kind (``vector``/``sequence``/``image`` or a registered one) and per-sample shape of one modality."""

    kind: str
    shape: tuple[int, ...]


EncoderFactory = Callable[..., nn.Module]


class MLPEncoder(nn.Module):
    """``Flatten -> Linear(in_dim, hidden) -> ReLU -> Dropout -> Linear(hidden, embed) -> ReLU``."""

    def __init__(self, in_dim: int, hidden: int, embed: int, dropout: float):
        super().__init__()
        self.embed_dim = embed
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, embed), nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Conv1dEncoder(nn.Module):
    """Two 1-D convolutions over ``(channels, time)``, global average pooling, a linear embedding."""

    def __init__(self, channels: int, hidden: int, embed: int, dropout: float):
        super().__init__()
        self.embed_dim = embed
        width = max(16, hidden // 4)
        self.net = nn.Sequential(
            nn.Conv1d(channels, width, 5, padding=2), nn.ReLU(),
            nn.Conv1d(width, width * 2, 5, padding=2, stride=2), nn.ReLU(),
            nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Dropout(dropout),
            nn.Linear(width * 2, embed), nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SmallCNNEncoder(nn.Module):
    """Two 2-D convolutions with max pooling, global average pooling, a linear embedding."""

    def __init__(self, channels: int, hidden: int, embed: int, dropout: float):
        super().__init__()
        self.embed_dim = embed
        width = max(16, hidden // 4)
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(width, width * 2, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
            nn.Linear(width * 2, embed), nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


_ENCODERS: dict[str, EncoderFactory] = {}


def register_encoder(kind: str, factory: EncoderFactory) -> None:
    """Make ``factory(spec, hidden=, embed=, dropout=) -> nn.Module`` the default encoder of ``kind``.

    Examples
    --------
    >>> from torch import nn
    >>> register_encoder("flat", lambda spec, hidden, embed, dropout: nn.Sequential(
    ...     nn.Flatten(), nn.Linear(math.prod(spec.shape), embed)))
    >>> make_encoder(ModalitySpec("flat", (2, 3)), hidden=4, embed=5, dropout=0.0)(torch.zeros(1, 2, 3)).shape
    torch.Size([1, 5])
    >>> del _ENCODERS["flat"]
    """
    if not callable(factory):
        raise TypeError(f"encoder factory for kind {kind!r} must be callable, got {type(factory).__name__}")
    _ENCODERS[kind] = factory


def available_encoders() -> list[str]:
    """Modality kinds that have a default encoder."""
    return sorted(_ENCODERS)


def make_encoder(spec: ModalitySpec, *, hidden: int, embed: int, dropout: float) -> nn.Module:
    """The registered default encoder for ``spec.kind``."""
    if spec.kind not in _ENCODERS:
        raise ValueError(f"unknown modality kind {spec.kind!r}; expected one of {available_encoders()} "
                         "(or pass an encoder module for it)")
    return _ENCODERS[spec.kind](spec, hidden=hidden, embed=embed, dropout=dropout)


def encoder_width(module: nn.Module, spec: ModalitySpec) -> int:
    """Output width of an encoder: its ``embed_dim`` attribute, else a dry forward on two zero samples.

    The dry forward runs in eval mode without gradient (no dropout draw, no batch-norm update)
    on the module's own device and dtype, and restores the module's training mode.
    """
    declared = getattr(module, "embed_dim", None)
    if declared is not None:
        if not isinstance(declared, int) or declared <= 0:
            raise ValueError(f"encoder {type(module).__name__}: embed_dim must be a positive int, got {declared!r}")
        return declared
    ref = next(iter(module.parameters()), None)
    x = torch.zeros((2, *spec.shape), device=ref.device if ref is not None else None,
                    dtype=ref.dtype if ref is not None and ref.is_floating_point() else torch.float32)
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            out = module(x)
    except Exception as exc:  # noqa: BLE001 - any failure means the module does not fit the shape
        raise ValueError(f"encoder {type(module).__name__} fails on input of shape (n, *{tuple(spec.shape)}): "
                         f"{exc}; declare embed_dim or fix the module") from None
    finally:
        module.train(was_training)
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"encoder {type(module).__name__} must return (n, width) embeddings, got {shape}")
    return int(out.shape[1])


register_encoder("vector", lambda spec, *, hidden, embed, dropout: MLPEncoder(math.prod(spec.shape), hidden,
                                                                              embed, dropout))
register_encoder("sequence", lambda spec, *, hidden, embed, dropout: Conv1dEncoder(spec.shape[0], hidden,
                                                                                   embed, dropout))
register_encoder("image", lambda spec, *, hidden, embed, dropout: SmallCNNEncoder(spec.shape[0], hidden,
                                                                                  embed, dropout))
