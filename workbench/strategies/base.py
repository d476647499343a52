"""The trainer's strategy hook, the naive joint-training strategy and the strategy registry.

A :class:`Strategy` decides the loss of a batch and may touch gradients between
``backward()`` and ``optimizer.step()``; balancing and fairness methods plug in here
without editing the trainer. Hooks, in call order::

    setup(ctx)                     once, after the model and optimizer exist
    on_epoch_start(ctx, epoch)     e.g. refit a GMM, update coefficients
    loss(ctx, batch, out)          -> scalar loss tensor for this batch
    after_backward(ctx, batch, out) e.g. rescale one encoder's gradients
    on_epoch_end(ctx, epoch, row)  may add columns to the epoch's history row

``graph_safe`` says whether a training step may be captured in a CUDA graph (no host-side
decisions inside a step); ``detach_unimodal`` says whether the unimodal heads train as
probes on detached embeddings (True for naive joint training, so the probes measure what
each encoder learned without shaping it).

Register a new strategy with :func:`register_strategy` and train with
``train(..., strategy="name", strategy_params={...})``.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from workbench.models.multimodal import ModelOutput, MultimodalModel


@dataclass
class Batch:
    """One training batch: modality tensors, labels, positions in the training set,
    an optional presence mask and optional integer-coded group attributes."""

    x: dict[str, torch.Tensor]
    y: torch.Tensor
    idx: torch.Tensor
    mask: dict[str, torch.Tensor] | None = None
    groups: dict[str, torch.Tensor] | None = None


@dataclass
class TrainContext:
    """What a strategy may read and update during training."""

    model: MultimodalModel
    optimizer: torch.optim.Optimizer
    train_x: dict[str, torch.Tensor]
    train_y: torch.Tensor
    train_mask: dict[str, torch.Tensor] | None
    train_groups: dict[str, torch.Tensor] | None
    device: torch.device
    config: Any
    epoch: int = 0
    state: dict = field(default_factory=dict)


class Strategy:
    """Naive joint training: fused cross-entropy plus unimodal probe losses.

    Loss: ``CE(z_fused, y) + w_uni * sum_m CE(z_m, y)`` where ``z_m`` comes from modality
    m's unimodal head on the *detached* embedding (a linear probe trained alongside), so
    the encoders see only the fused loss.
    """

    name = "naive"
    graph_safe = True
    detach_unimodal = True

    def __init__(self, *, unimodal_weight: float = 1.0):
        self.unimodal_weight = unimodal_weight

    def params(self) -> dict:
        """The constructor's keyword parameters, as recorded in the run's config.

        Only names that ``__init__`` accepts are read (from the attributes of the same name),
        so what a strategy learns while training (GMM fits, EMAs, logs) never reaches
        ``config.json``; that belongs to :meth:`state_dict`. Tuples become lists, as JSON would.
        """
        out = {}
        for cls in type(self).__mro__:
            init = cls.__dict__.get("__init__")
            if init is None or cls is object:
                continue
            for name, p in inspect.signature(init).parameters.items():
                if name != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and hasattr(self, name):
                    out.setdefault(name, _plain_param(getattr(self, name)))
        return dict(sorted(out.items()))

    def state_dict(self) -> dict:
        """What this strategy has learned so far (EMAs, coefficients, fits, RNG states).

        Saved in every checkpoint and handed back to :meth:`load_state_dict` on resume (after
        :meth:`setup`), so a resumed run continues exactly. Values must survive
        ``torch.load(weights_only=True)``: tensors, dicts, lists, numbers, strings, None
        (:func:`check_plain_state` enforces it). Stateless strategies keep the default ``{}``.
        """
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned; called after :meth:`setup` on resume."""
        if state:
            raise ValueError(f"strategy {self.name!r} keeps no state but the checkpoint holds {sorted(state)}")

    def setup(self, ctx: TrainContext) -> None:
        pass

    def on_epoch_start(self, ctx: TrainContext, epoch: int) -> None:
        pass

    def prepare_batch(self, ctx: TrainContext, batch: Batch) -> Batch:
        """The batch the forward pass sees (e.g. with a sampled presence mask); unchanged by default."""
        return batch

    def fused_loss(self, out: ModelOutput, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        return F.cross_entropy(out.logits.float(), y, reduction=reduction)

    def unimodal_losses(self, out: ModelOutput, y: torch.Tensor) -> dict[str, torch.Tensor]:
        return {m: F.cross_entropy(z.float(), y) for m, z in out.unimodal_logits.items()}

    def loss(self, ctx: TrainContext, batch: Batch, out: ModelOutput) -> torch.Tensor:
        uni = self.unimodal_losses(out, batch.y)
        return self.fused_loss(out, batch.y) + self.unimodal_weight * sum(uni.values())

    def after_backward(self, ctx: TrainContext, batch: Batch, out: ModelOutput) -> None:
        pass

    def on_epoch_end(self, ctx: TrainContext, epoch: int, row: dict) -> None:
        pass


def _plain_param(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain_param(v) for v in value]
    if isinstance(value, list):
        return [_plain_param(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain_param(v) for k, v in value.items()}
    return value


_PLAIN = (torch.Tensor, str, int, float, bool, type(None))


def check_plain_state(state: Any, where: str = "state") -> None:
    """Raise ``TypeError`` naming the first entry of ``state`` that ``torch.load(weights_only=True)``
    could not read back (anything but tensors, dicts, lists, numbers, strings and None)."""
    if isinstance(state, dict):
        for k, v in state.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"{where}: key {k!r} is a {type(k).__name__}; use str or int keys")
            check_plain_state(v, f"{where}[{k!r}]")
    elif isinstance(state, (list, tuple)):
        for i, v in enumerate(state):
            check_plain_state(v, f"{where}[{i}]")
    elif not isinstance(state, _PLAIN):
        raise TypeError(f"{where} is a {type(state).__name__}; a checkpoint holds only tensors, dicts, lists, "
                        "numbers and strings (weights_only=True)")


# -- registry ------------------------------------------------------------------------------
# name -> "module:Class", imported on first use so optional strategies cost nothing at start-up.
_REGISTRY: dict[str, str | type[Strategy]] = {"naive": Strategy}
_REGISTRY["gmm_adaptive"] = "workbench.strategies.gmm_adaptive:GMMAdaptive"
_REGISTRY["ogm_ge"] = "workbench.strategies.ogm_ge:OGMGE"
_REGISTRY["mlb"] = "workbench.strategies.mlb:MLB"
_REGISTRY["mcr"] = "workbench.strategies.mcr:MCR"
_REGISTRY["joint"] = "workbench.analyses.baselines:Joint"
_REGISTRY["multifair"] = "workbench.strategies.multifair:MultiFair"
_REGISTRY["group_reweight"] = "workbench.strategies.multifair:GroupReweight"
_REGISTRY["modality_dropout"] = "workbench.strategies.modality_dropout:ModalityDropout"


def register_strategy(name: str, cls: type[Strategy] | str) -> None:
    """Make a strategy class (or a ``"module:Class"`` path in this project) trainable by name."""
    _REGISTRY[name] = cls


def available_strategies() -> list[str]:
    return sorted(_REGISTRY)


def make_strategy(name: str | Strategy, **params: Any) -> Strategy:
    """Instantiate a registered strategy with keyword parameters."""
    if isinstance(name, Strategy):
        return name
    if name not in _REGISTRY:
        raise ValueError(f"unknown strategy {name!r}; available: {available_strategies()}")
    target = _REGISTRY[name]
    if isinstance(target, str):
        module, cls_name = target.split(":")
        target = getattr(importlib.import_module(module), cls_name)
        _REGISTRY[name] = target
    try:
        return target(**params)
    except TypeError as exc:
        raise ValueError(f"strategy {name!r}: bad parameters {params}: {exc}") from None
