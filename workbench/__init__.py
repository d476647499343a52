"""Multimodal Workbench: train multimodal models and ask which modality contributes,
whether one drowns the others out, and whether the model works for every group.

Example
-------
>>> from workbench import load_dataset, train
>>> ds = load_dataset("mfeat")            # UCI Multiple Features, 6 views  # doctest: +SKIP
>>> run = train("mfeat", fusion="concat", epochs=30)                      # doctest: +SKIP
>>> run.accuracy()                                                         # doctest: +SKIP
"""

from workbench.data import DataError, MultimodalDataset, Splits
from workbench.models.multimodal import ModalitySpec, ModelOutput, MultimodalModel, build_model
from workbench.store.runs import Run, RunError, RunStore, load_run
from workbench.strategies.base import (
    Batch,
    Strategy,
    TrainContext,
    available_strategies,
    make_strategy,
    register_strategy,
)
from workbench.tasks import Task, available_tasks, make_task, register_task
from workbench.training.config import TrainConfig
from workbench.training.train import train
from workbench.training.trainer import Trainer, predict_frame, predict_proba

__version__ = "0.1.0"


def load_dataset(name: str = "mfeat", **params) -> MultimodalDataset:
    """Load a catalog dataset (see :func:`list_datasets`) or a user data folder by path.

    ``params`` override a synthetic generator's parameters, e.g. ``n=500, seed=3``.
    """
    from data_catalog.registry import load

    return load(name, **params)


def list_datasets():
    """The catalog as a DataFrame: name, modalities with shapes, classes, groups, source, license."""
    from data_catalog.registry import catalog_table

    return catalog_table()


__all__ = [
    "Batch", "DataError", "ModalitySpec", "ModelOutput", "MultimodalDataset", "MultimodalModel", "Run",
    "RunError", "RunStore", "Splits", "Strategy", "Task", "TrainConfig", "TrainContext", "Trainer",
    "available_strategies", "available_tasks", "build_model", "list_datasets", "load_dataset", "load_run",
    "make_strategy", "make_task", "predict_frame", "predict_proba", "register_strategy", "register_task", "train",
]
