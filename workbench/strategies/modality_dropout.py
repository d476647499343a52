"""Modality dropout: train one model that still predicts when modalities are missing.

Each training sample sees a random coalition of its modalities: with probability
``p_full`` all of them, otherwise each modality independently with probability ``keep``
(at least one is always kept). The sampled presence mask is ANDed with the dataset's own
mask and applied in the forward pass through :meth:`Strategy.prepare_batch`, so the model
learns the masked predictors ``mu_S`` that the Shapley analysis evaluates with
``value_method="masked"`` (Chandy et al., arXiv 2602.00171, note section 5: "one model
trained with modality dropout, evaluated under masks, labelled as a different estimand").
The loss is the naive one (fused cross-entropy plus detached unimodal probes).

Example
-------
>>> from workbench import train
>>> run = train("synthetic-imbalance", epochs=2, strategy="modality_dropout", save=False,
...             dataset_params={"n": 300}, progress=False)
>>> run.config["strategy"]["name"]
'modality_dropout'
"""

from __future__ import annotations

import torch

from workbench.strategies.base import Batch, Strategy, TrainContext, register_strategy


@register_strategy("modality_dropout")
class ModalityDropout(Strategy):
    """Naive joint training on randomly sampled modality coalitions.

    Parameters
    ----------
    p_full : float
        Probability that a sample keeps all its modalities (default 0.25).
    keep : float
        Otherwise, probability that each modality is kept (default 0.5).
    unimodal_weight : float
        Weight of the unimodal probe losses.
    """

    graph_safe = False  # its own torch.Generator is not registered with CUDA-graph capture
    detach_unimodal = True

    def __init__(self, *, p_full: float = 0.25, keep: float = 0.5, unimodal_weight: float = 1.0):
        super().__init__(unimodal_weight=unimodal_weight)
        if not (0 <= p_full <= 1 and 0 < keep <= 1):
            raise ValueError(f"modality_dropout: need 0 <= p_full <= 1 and 0 < keep <= 1, got {p_full}, {keep}")
        self.p_full = p_full
        self.keep = keep

    def setup(self, ctx: TrainContext) -> None:
        self._gen = torch.Generator(device=ctx.device).manual_seed(int(ctx.config.seed) + 1009)

    def sample_mask(self, n: int, modalities: list[str], device: torch.device) -> dict[str, torch.Tensor]:
        """A random presence mask ``modality -> bool[n]`` with at least one modality per row."""
        m = len(modalities)
        keep = torch.rand(n, m, device=device, generator=self._gen) < self.keep
        keep |= (torch.rand(n, 1, device=device, generator=self._gen) < self.p_full)
        pick = torch.randint(0, m, (n,), device=device, generator=self._gen)
        keep |= torch.nn.functional.one_hot(pick, m).bool() & ~keep.any(1, keepdim=True)
        return {name: keep[:, j] for j, name in enumerate(modalities)}

    def prepare_batch(self, ctx: TrainContext, batch: Batch) -> Batch:
        names = list(batch.x)
        sampled = self.sample_mask(len(batch.y), names, batch.y.device)
        if batch.mask is not None:
            sampled = {m: v & batch.mask[m] if m in batch.mask else v for m, v in sampled.items()}
        return Batch(batch.x, batch.y, batch.idx, sampled, batch.groups)

    # -- checkpoint state ------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The state of the mask generator (its own ``torch.Generator``, not the global RNG)."""
        return {"generator": self._gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self._gen.set_state(state["generator"])
