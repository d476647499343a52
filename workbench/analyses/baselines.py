"""Baselines for the balancing benchmark: unimodal models and the ensemble of separately trained unimodal models.

The ``joint`` baseline strategy (naive joint training under the config's optimizer,
``TrainConfig(optimizer="sgd", lr=..., momentum=...)``) is :mod:`workbench.strategies.joint`.

Example
-------
>>> from workbench import load_dataset
>>> ds = load_dataset("synthetic-imbalance", n=300)
>>> res = train_unimodal_models(ds, epochs=2, seed=0)
>>> sorted(res.models)
['strong', 'weak']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from workbench.data import MultimodalDataset, Splits
from workbench.models.multimodal import MultimodalModel
from workbench.training.config import TrainConfig
from workbench.training.train import train


@dataclass
class UnimodalModels:
    """One model per modality, each trained on that modality alone (same split and seed).

    Batched models are single-modality coalition models from
    :func:`workbench.training.stacked.train_coalitions` (the full architecture with every other modality
    masked, so they compute exactly what a model built on that modality alone computes);
    ``batched=False`` models are built on ``ds.select_modalities([m])`` and trained one by one.
    """

    ds: MultimodalDataset
    splits: Splits
    models: dict[str, MultimodalModel]
    batched: bool

    def _view(self, m: str, idx: np.ndarray) -> tuple[MultimodalDataset, dict | None]:
        if not self.batched:
            return self.ds.select_modalities([m]), None
        hide = torch.zeros(len(idx), dtype=torch.bool)
        return self.ds, {o: hide for o in self.ds.modality_names if o != m}

    def proba(self, m: str, idx: np.ndarray) -> torch.Tensor:
        """Class probabilities of modality ``m``'s model on samples ``idx``."""
        from workbench.training.trainer import predict_proba

        ds, mask = self._view(m, idx)
        return predict_proba(self.models[m], ds, idx, mask=mask)[0]

    def accuracy(self, m: str, idx: np.ndarray) -> float:
        return _accuracy(self.proba(m, idx), self.ds, idx)

    def ensemble_accuracy(self, idx: np.ndarray) -> float:
        """Accuracy of the ensemble that averages the unimodal models' class probabilities on ``idx``."""
        return _accuracy(torch.stack([self.proba(m, idx) for m in self.models]).mean(0), self.ds, idx)


def _accuracy(proba: torch.Tensor, ds: MultimodalDataset, idx: np.ndarray) -> float:
    return float((proba.argmax(1) == ds.y[torch.as_tensor(idx, dtype=torch.long)]).float().mean())


def train_unimodal_models(ds: MultimodalDataset, *, epochs: int = 30, seed: int = 0, batched: bool | None = None,
                          **config: Any) -> UnimodalModels:
    """One model per modality, each trained on that modality alone (same split seed).

    ``config`` are other :class:`~workbench.training.config.TrainConfig` fields, e.g.
    ``optimizer="sgd", lr=0.02, momentum=0.9``. ``batched=True`` trains the M models at once as stacked coalition
    models (:mod:`workbench.training.stacked`), ``False`` one by one with the Trainer; the default
    batches on CUDA only. On the CPU a handful of one-encoder models is too little work to
    pay for the vectorising overhead: on mfeat (6 models, 10 epochs, 2 cores) batched took
    4.6 s against 2.0 s one by one.
    """
    cfg = TrainConfig(epochs=epochs, seed=seed, strategy="joint", progress=False, **config)  # checked up front
    splits = ds.split(seed=seed)
    if batched is None:
        batched = torch.cuda.is_available()
    if not batched:
        models = {m: train(ds.select_modalities([m]), save=False, **cfg.to_dict()).model
                  for m in ds.modality_names}
        return UnimodalModels(ds, splits, models, batched=False)
    from workbench.training.stacked import train_coalitions

    rest = {k: v for k, v in cfg.to_dict().items()
            if k not in ("epochs", "seed", "progress", "strategy", "strategy_params")}
    fit = train_coalitions(ds, splits, [(m,) for m in ds.modality_names], epochs=epochs, seed=seed,
                           progress=False, **rest)
    return UnimodalModels(ds, splits, {c[0]: model for c, model in zip(fit.labels, fit.models, strict=True)},
                          batched=True)
