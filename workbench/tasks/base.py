"""The :class:`Task` interface (what is learned) and the task registry.

A task owns everything that depends on *what* a model learns, so that the trainer, the run
store, sweeps and panels serve every task unchanged:

==========================  =====================================================================
``check_dataset(ds)``       one-line error (naming the dataset) before any training
``build_model(...)``        the model, from the modalities' shapes and kinds and the run's config
``forward(model, x, mask)`` one training forward pass (default ``model(x, mask, detach_unimodal=...)``)
``loss(out, y, mask)``      the default loss of a batch (a strategy may replace it)
``batch_statistic(out, y)`` a summed per-batch number, graph-safe: ``train_<train_metric>`` = sum / n
``evaluate(model, x, ...)`` held-out numbers of an epoch (``heldout_loss`` drives early stopping)
``predict_frame(...)``      tidy per-sample predictions (what the analyses read)
``prediction_columns(ms)``  the columns a saved run's predictions must have (checked on load)
``metrics(predictions)``    ``{split: {name: value}}`` recorded in the run
``score_table(predictions)`` the headline score per split and model (``Run.accuracy()``, panels)
==========================  =====================================================================

Tasks are registered by decorator, like strategies and fusion heads, and named in the config
(``TrainConfig.task`` and ``task_params``). Built in: ``classification``
(:mod:`workbench.tasks.classification`). A strategy declares which tasks it supports
(:attr:`workbench.strategies.base.Strategy.tasks`), so, e.g., a balancing method written for
cross-entropy heads is refused for an alignment run before training starts.

Examples
--------
>>> from workbench.tasks import available_tasks, make_task
>>> "classification" in available_tasks()
True
>>> make_task("classification").train_metric
'acc'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn

from workbench.plugins import Registry


class Task:
    """Base of every task; subclass it, implement the methods and register it with ``@register_task``.

    Methods receive plain tensors and frames (no trainer objects), so a task is testable alone.
    """

    name: ClassVar[str] = ""
    #: the history column of :meth:`batch_statistic`: ``train_<train_metric>``
    train_metric: ClassVar[str] = "metric"

    def params(self) -> dict:
        """The task's constructor parameters, as recorded in the run's config (none by default)."""
        return {}

    def check_dataset(self, ds: Any) -> None:
        """Raise a one-line ``ValueError`` when ``ds`` cannot be learned by this task."""

    def build_model(self, *, shapes: Mapping[str, tuple[int, ...]], kinds: Mapping[str, str], n_classes: int,
                    config: Mapping[str, Any], encoders: dict[str, nn.Module] | None = None) -> nn.Module:
        raise NotImplementedError(f"task {self.name!r} does not build a model")

    def forward(self, model: nn.Module, x: dict[str, torch.Tensor], mask: dict[str, torch.Tensor] | None,
                *, detach_unimodal: bool = False) -> Any:
        """One forward pass in training (what :meth:`loss` and :meth:`batch_statistic` receive).

        The default calls ``model(x, mask, detach_unimodal=...)``; a model with another signature
        overrides this. Before training, the trainer calls the model's ``set_standardization(x)``
        with the training inputs when it has one.
        """
        return model(x, mask, detach_unimodal=detach_unimodal)

    def loss(self, out: Any, y: torch.Tensor, mask: dict[str, torch.Tensor] | None = None, *,
             unimodal_weight: float = 1.0) -> torch.Tensor:
        raise NotImplementedError(f"task {self.name!r} has no loss")

    def batch_statistic(self, out: Any, y: torch.Tensor) -> torch.Tensor:
        """A tensor summed over the batch (``train_<train_metric>`` is its sum over an epoch / n)."""
        return torch.zeros((), device=y.device)

    def evaluate(self, model: nn.Module, x: dict[str, torch.Tensor], y: torch.Tensor,
                 mask: dict[str, torch.Tensor] | None = None) -> dict[str, float]:
        raise NotImplementedError(f"task {self.name!r} has no held-out evaluation")

    def predict_frame(self, model: nn.Module, ds: Any, idx: np.ndarray | None = None, *,
                      mask: dict[str, torch.Tensor] | None = None,
                      split_labels: np.ndarray | None = None) -> pd.DataFrame:
        raise NotImplementedError(f"task {self.name!r} has no predictions")

    def prediction_columns(self, modalities: list[str]) -> list[str]:
        """Columns :meth:`predict_frame` always writes (a saved run lacking one is refused on load)."""
        return ["sample", "split"]

    def metrics(self, predictions: pd.DataFrame, modalities: list[str]) -> dict:
        """``{split: {name: value, "n": count}}`` from :meth:`predict_frame`'s frame."""
        return {}

    def score_table(self, predictions: pd.DataFrame, modalities: list[str]) -> pd.DataFrame:
        """The headline score of every model a run holds, per split, in long format: ``split,
        model, kind, accuracy, n, measure`` (``measure`` names what ``accuracy`` is, for titles).
        What the run panel, the dashboard's overview and the CLI show."""
        return pd.DataFrame(columns=["split", "model", "kind", "accuracy", "n", "measure"])


# -- registry ------------------------------------------------------------------------------------
TASKS: Registry[type[Task]] = Registry("task", Task, package="workbench.tasks", skip=("base",))
register_task = TASKS.register
unregister_task = TASKS.unregister


def available_tasks() -> list[str]:
    """Every registered task name, built-in ones included."""
    return sorted(TASKS.names())


def make_task(name: str | Task, **params: Any) -> Task:
    """Instantiate a registered task (a :class:`Task` instance is returned as it is)."""
    if isinstance(name, Task):
        return name
    cls = TASKS.get(name)
    try:
        return cls(**params)
    except TypeError as exc:
        raise ValueError(f"task {name!r}: bad parameters {params}: {exc}") from None
