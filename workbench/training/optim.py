"""The optimizers of the trainer (and of the stacked many-model trainer).

Example
-------
>>> import torch
>>> from workbench.training.optim import make_optimizer, schedule_factor
>>> opt = make_optimizer(torch.nn.Linear(3, 2).parameters(), lr=0.02, weight_decay=0.0, kind="sgd")
>>> type(opt).__name__, opt.defaults["momentum"]
('SGD', 0.9)
>>> [round(schedule_factor(e, epochs=4, lr=1e-3, lr_min=1e-6, schedule="cosine"), 4) for e in range(5)]
[1.0, 0.8537, 0.5005, 0.1473, 0.001]
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


def make_optimizer(params: Iterable[torch.nn.Parameter] | Iterable[dict], *, lr: float, weight_decay: float,
                   kind: str = "adam", momentum: float = 0.9, capturable: bool = False) -> torch.optim.Optimizer:
    """Adam, AdamW (decoupled weight decay, Loshchilov & Hutter 2019) or SGD with momentum, using the fused kernel where this build has one for the
    parameters' device: the same update rule in one pass over all tensors instead of a Python
    loop of small ops per tensor (on the CPU the per-tensor loop was a third of a training step).
    ``capturable=True`` (CUDA-graph capture) keeps the capturable implementation, which only
    Adam has (the trainer runs SGD eagerly).

    ``kind`` and ``momentum`` are :class:`~workbench.training.config.TrainConfig`'s
    ``optimizer`` and ``momentum``.
    """
    if kind not in ("adam", "adamw", "sgd"):
        raise ValueError(f"optimizer must be 'adam', 'adamw' or 'sgd', got {kind!r}")
    if capturable and kind == "sgd":
        raise ValueError("optimizer 'sgd' has no capturable implementation in torch; use the eager step")
    params = list(params)
    cls, extra = {"sgd": (torch.optim.SGD, {"momentum": momentum}), "adam": (torch.optim.Adam, {}),
                  "adamw": (torch.optim.AdamW, {})}[kind]
    if capturable:
        return cls(params, lr=lr, weight_decay=weight_decay, capturable=True, **extra)
    try:
        return cls(params, lr=lr, weight_decay=weight_decay, fused=True, **extra)
    except (RuntimeError, ValueError):  # no fused kernel for this device or dtype
        return cls(params, lr=lr, weight_decay=weight_decay, foreach=True, **extra)


def schedule_factor(epoch: int, *, epochs: int, lr: float, lr_min: float, schedule: str) -> float:
    """The learning rate of ``epoch`` (0-based) as a fraction of the base rate.

    ``"constant"``: 1. ``"cosine"``: torch's ``CosineAnnealingLR`` with ``T_max = epochs`` stepped
    once per epoch, in its closed form ``lr_min + (lr - lr_min) (1 + cos(pi e / T)) / 2`` (the
    ConFu authors' schedule, ``eta_min = 1e-6``). A closed form of the epoch needs no scheduler
    state, so a resumed run continues on the same curve.
    """
    if schedule == "constant" or epochs <= 0:
        return 1.0
    if schedule != "cosine":
        raise ValueError(f"schedule must be 'constant' or 'cosine', got {schedule!r}")
    value = lr_min + (lr - lr_min) * (1 + math.cos(math.pi * min(epoch, epochs) / epochs)) / 2
    return value / lr


def apply_schedule(optimizer: torch.optim.Optimizer, epoch: int, *, epochs: int, lr: float, lr_min: float,
                   schedule: str) -> None:
    """Set every parameter group's rate for ``epoch``: its own starting rate (kept as
    ``initial_lr``, so groups a strategy gave other rates keep their ratios) times the factor."""
    factor = schedule_factor(epoch, epochs=epochs, lr=lr, lr_min=lr_min, schedule=schedule)
    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"])
        group["lr"] = group["initial_lr"] * factor
