"""Baselines for the balancing benchmark: naive joint training with a choice of optimizer,
unimodal models and the ensemble of separately trained unimodal models.

``joint``: the naive joint-training loss (fused CE plus unimodal probes on detached
embeddings, see :class:`workbench.strategy.Strategy`) with ``optimizer="sgd"`` available, so
that the naive baseline runs under the same optimizer as the methods it is compared with.

Example
-------
>>> from workbench import load_dataset
>>> ds = load_dataset("synthetic-imbalance", n=300)
>>> res = train_unimodal_models(ds, epochs=2, seed=0)
>>> sorted(res)
['strong', 'weak']
"""

from __future__ import annotations

import numpy as np
import torch

from workbench.balancing.common import maybe_sgd
from workbench.data import MultimodalDataset
from workbench.runs import Run, train
from workbench.strategy import Strategy, TrainContext


class Joint(Strategy):
    """Naive joint training (fused CE + detached unimodal probes) with an optimizer choice."""

    name = "joint"

    def __init__(self, *, optimizer: str | None = None, sgd_lr: float = 0.02, sgd_momentum: float = 0.9,
                 unimodal_weight: float = 1.0):
        super().__init__(unimodal_weight=unimodal_weight)
        self.optimizer, self.sgd_lr, self.sgd_momentum = optimizer, sgd_lr, sgd_momentum

    def setup(self, ctx: TrainContext) -> None:
        maybe_sgd(ctx, self.optimizer, self.sgd_lr, self.sgd_momentum)


def train_unimodal_models(ds: MultimodalDataset, *, epochs: int = 30, seed: int = 0,
                          strategy_params: dict | None = None, **train_kwargs) -> dict[str, Run]:
    """One model per modality, each trained on that modality alone (same split seed).

    Returns
    -------
    dict of modality to Run
    """
    return {m: train(ds.select_modalities([m]), epochs=epochs, seed=seed, strategy="joint",
                     strategy_params=strategy_params or {}, save=False, progress=False, **train_kwargs)
            for m in ds.modality_names}


def ensemble_accuracy(runs: dict[str, Run], ds: MultimodalDataset, idx: np.ndarray) -> float:
    """Accuracy of the ensemble that averages the unimodal models' class probabilities on ``idx``."""
    from workbench.trainer import predict_proba

    probs = [predict_proba(r.model, ds.select_modalities([m]), idx)[0] for m, r in runs.items()]
    pred = torch.stack(probs).mean(0).argmax(1)
    return float((pred == ds.y[torch.as_tensor(idx, dtype=torch.long)]).float().mean())
