"""The trainer's strategy hook (the :class:`Strategy` base) and the strategy registry.

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

A strategy is one module: a :class:`Strategy` subclass decorated with
``@register_strategy("name")``, trained with ``train(..., strategy="name",
strategy_params={...})``. The built-in strategies (every module of this package but ``base``
and ``common``) are imported on the first look-up of a name not registered yet, so importing
the trainer costs none of them. The default, ``naive``, is :mod:`workbench.strategies.naive`. A strategy declares the tasks it
was written for (:attr:`Strategy.tasks`); the default loss is the task's own.

Examples
--------
>>> from workbench.strategies.base import Strategy, make_strategy, register_strategy, unregister_strategy
>>> @register_strategy("doc_example")
... class Quiet(Strategy):
...     pass
>>> make_strategy("doc_example").name, make_strategy("naive").params()
('doc_example', {'unimodal_weight': 1.0})
>>> unregister_strategy("doc_example")
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import torch

from workbench.models.multimodal import ModelOutput, MultimodalModel
from workbench.plugins import Registry
from workbench.tasks import Task
from workbench.tasks.classification import (
    ClassificationTask,
    fused_loss,
    unimodal_losses,
    unimodal_per_sample,
)


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
    task: Task = field(default_factory=ClassificationTask)


class Strategy:
    """Base of every strategy: the hooks the trainer calls, each a no-op but :meth:`loss`.

    Subclass it, override the hooks a method needs and register the subclass with
    ``@register_strategy("name")`` (which sets :attr:`name`). The default :meth:`loss` is naive
    joint training, ``CE(z_fused, y) + w_uni * sum_m CE(z_m, y)`` where ``z_m`` comes from
    modality m's unimodal head on the *detached* embedding (a linear probe trained alongside),
    so the encoders see only the fused loss; methods that only act on gradients keep it.

    Parameters
    ----------
    unimodal_weight : float
        Weight ``w_uni`` of the unimodal probe losses (default 1).
    """

    name: ClassVar[str] = ""
    graph_safe: ClassVar[bool] = True
    detach_unimodal: ClassVar[bool] = True
    #: the tasks (:mod:`workbench.tasks`) this strategy was written for; ``None``: any task (the
    #: strategy only uses the task's own loss). The trainer refuses other tasks before training.
    tasks: ClassVar[tuple[str, ...] | None] = ("classification",)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A subclass that sets no :attr:`name` is called by its class name until it is registered."""
        super().__init_subclass__(**kwargs)
        cls._name_declared = "name" in cls.__dict__
        if not cls._name_declared:
            cls.name = cls.__name__.lower()

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

    def fused_loss(self, out: ModelOutput, y: torch.Tensor, reduction: str = "mean",
                   mask: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Cross-entropy of the fused head (:func:`workbench.tasks.classification.fused_loss`)."""
        return fused_loss(out, y, reduction, mask)

    def unimodal_losses(self, out: ModelOutput, y: torch.Tensor,
                        mask: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Cross-entropy of each unimodal head over the samples that have its modality."""
        return unimodal_losses(out, y, mask)

    def unimodal_per_sample(self, out: ModelOutput, y: torch.Tensor,
                            mask: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Per sample, the unimodal cross-entropies summed over the modalities it has."""
        return unimodal_per_sample(out, y, mask)

    def loss(self, ctx: TrainContext, batch: Batch, out: ModelOutput) -> torch.Tensor:
        """The task's own loss (classification: fused CE + ``unimodal_weight`` x unimodal CEs)."""
        return ctx.task.loss(out, batch.y, batch.mask, unimodal_weight=self.unimodal_weight)

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


# -- registry ------------------------------------------------------------------------------------
# built-in modules register themselves with the decorator when imported, on the first look-up of
# a name not registered yet (strategies/ogm_ge.py for "ogm_ge" first, every module after that)
_REGISTRY: Registry[type[Strategy]] = Registry("strategy", Strategy, package="workbench.strategies",
                                                skip=("base", "common"), keep_declared_name=True)

S = TypeVar("S", bound=type[Strategy])


def register_strategy(name: str, cls: type[Strategy] | str | None = None) -> Callable[[S], S] | None:
    """Make a strategy trainable by name; as ``@register_strategy(name)``, a class decorator.

    ``cls`` may be a :class:`Strategy` subclass or a ``"module:Class"`` path (imported on first
    use). The decorator also sets the class's :attr:`~Strategy.name` when the class does not
    declare one itself. Registering a name again replaces the earlier strategy.
    """
    if isinstance(cls, str):
        _REGISTRY.register_path(name, cls)
        return None
    if cls is not None:
        _REGISTRY.register(name)(cls)
        return None
    return _REGISTRY.register(name)


def unregister_strategy(name: str) -> None:
    """Forget a registered strategy (no error if it is not registered)."""
    _REGISTRY.unregister(name)


def available_strategies() -> list[str]:
    """Every registered strategy name, built-in ones included."""
    return sorted(_REGISTRY.names())


def make_strategy(name: str | Strategy, **params: Any) -> Strategy:
    """Instantiate a registered strategy with keyword parameters."""
    if isinstance(name, Strategy):
        return name
    target = _REGISTRY.get(name)
    try:
        return target(**params)
    except TypeError as exc:
        raise ValueError(f"strategy {name!r}: bad parameters {params}: {exc}") from None
