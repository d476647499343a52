"""The optimizers of the trainer (and of the stacked many-model trainer).

Example
-------
>>> import torch
>>> from workbench.training.optim import make_optimizer
>>> opt = make_optimizer(torch.nn.Linear(3, 2).parameters(), lr=0.02, weight_decay=0.0, kind="sgd")
>>> type(opt).__name__, opt.defaults["momentum"]
('SGD', 0.9)
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


def make_optimizer(params: Iterable[torch.nn.Parameter] | Iterable[dict], *, lr: float, weight_decay: float,
                   kind: str = "adam", momentum: float = 0.9, capturable: bool = False) -> torch.optim.Optimizer:
    """Adam (or SGD with momentum) using the fused kernel where this build has one for the
    parameters' device: the same update rule in one pass over all tensors instead of a Python
    loop of small ops per tensor (on the CPU the per-tensor loop was a third of a training step).
    ``capturable=True`` (CUDA-graph capture) keeps the capturable implementation, which only
    Adam has (the trainer runs SGD eagerly).

    ``kind`` and ``momentum`` are :class:`~workbench.training.config.TrainConfig`'s
    ``optimizer`` and ``momentum``.
    """
    if kind not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {kind!r}")
    if capturable and kind == "sgd":
        raise ValueError("optimizer 'sgd' has no capturable implementation in torch; use the eager step")
    params = list(params)
    cls, extra = (torch.optim.SGD, {"momentum": momentum}) if kind == "sgd" else (torch.optim.Adam, {})
    if capturable:
        return cls(params, lr=lr, weight_decay=weight_decay, capturable=True, **extra)
    try:
        return cls(params, lr=lr, weight_decay=weight_decay, fused=True, **extra)
    except (RuntimeError, ValueError):  # no fused kernel for this device or dtype
        return cls(params, lr=lr, weight_decay=weight_decay, foreach=True, **extra)
