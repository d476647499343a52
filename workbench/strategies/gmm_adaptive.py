"""GMM-guided adaptive loss against modality imbalance.

Liu, Yu & Liu, *Modality imbalance ... GMM-guided adaptive loss* (arXiv 2510.21797, v1-v3).
Only the abstracts were available (method note ``shared/methods/imbalance.md`` section A):
**every formula, weight, warm-up length and refit rule below is UNCONFIRMED**; this is the
note's reference design, consistent with what the abstracts state.

Stages
------
1. **Warm-up** (``warmup_epochs``, default 5, as the 5-epoch warm-up of BML_TPAMI2024):
   ``L = CE(z_f, y) + w_uni sum_m CE(z_m, y)`` (the unimodal heads train *with* their encoders).
2. **Adaptive** (every later epoch): at the start of the epoch the gap ``d_i`` of every
   training sample is computed in eval mode, a 1-D two-component GMM is fitted (warm-started
   from the previous epoch, :func:`workbench.stats.mixtures.fit_gap_gmm`); the balanced component ``b``
   has the smaller ``|mu|``, ``gamma_i`` is the posterior of the imbalanced one ``u``. Per batch,
   with ``gamma`` fixed::

       L = (1/B) sum_i [ (1 + lambda_f (1 - gamma_i)) CE(z_f,i, y_i) + lambda_g (1 + gamma_i) |d_i| ]
           + lambda_a ( sum_i gamma_i d_i / sum_i gamma_i - mu_b )^2
           + w_uni sum_m CE(z_m, y)

   i.e. fusion priority on balanced samples, a larger gap penalty on imbalanced ones, and an
   *align* term pulling the imbalanced group's mean gap to the balanced component's mean.
3. **High-quality fine-tuning** (optional, the last ``finetune_epochs`` epochs): plain
   ``CE(z_f) + w_uni sum_m CE(z_m)`` on the samples with ``gamma_i < tau`` (the GMM fit at the
   start of the fine-tuning stage is kept).

Choices [UNCONFIRMED / INFERRED]
--------------------------------
- Gap: ``M = 2``: signed ``d_i = p_1,i - p_2,i`` (first minus second modality). ``M > 2``:
  the spread ``d_i = max_m p_m,i - min_m p_m,i``.
- ``stop_grad_strong=True``: inside ``|d_i|`` (and the align term) the gradient flows only
  into the weaker modality's score of that sample, so the weak score is pushed up rather
  than the strong one pulled down.
- The unimodal CE terms stay on in the adaptive stage (``w_uni = 1``) so the heads that
  define ``d`` remain classifiers; otherwise ``|d|`` could be shrunk by making every head
  uninformative.
- ``lambda_f = lambda_g = lambda_a = 1``, ``tau = 0.5``, refit every epoch.

Example
-------
>>> from workbench import train
>>> run = train("synthetic-imbalance", epochs=3, strategy="gmm_adaptive",
...             strategy_params={"warmup_epochs": 1}, dataset_params={"n": 300}, save=False, progress=False)
>>> run.history["phase"].tolist()
['warmup', 'adaptive', 'adaptive']
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from workbench.models.multimodal import ModelOutput
from workbench.stats.mixtures import GMMFit, fit_gap_gmm
from workbench.strategies.base import Batch, Strategy, TrainContext, register_strategy
from workbench.strategies.common import unimodal_true_scores


def gap_values(p: dict[str, torch.Tensor], *, stop_grad_strong: bool = False) -> torch.Tensor:
    """The per-sample gap: signed ``p_1 - p_2`` for two modalities, ``max - min`` for more.

    With ``stop_grad_strong`` the value is unchanged but the gradient reaches only the weaker
    (smaller) score of each sample.

    Examples
    --------
    >>> import torch
    >>> gap_values({"a": torch.tensor([0.9, 0.2]), "b": torch.tensor([0.5, 0.6])})
    tensor([ 0.4000, -0.4000])
    """
    stacked = torch.stack(list(p.values()), 1)  # (n, M)
    if stacked.shape[1] < 2:
        raise ValueError(f"the modality gap needs at least two modalities, got {list(p)}")
    if stacked.shape[1] == 2:
        a, b = stacked[:, 0], stacked[:, 1]
        if not stop_grad_strong:
            return a - b
        return torch.where(a >= b, a.detach() - b, a - b.detach())
    hi, lo = stacked.max(1).values, stacked.min(1).values
    return (hi.detach() if stop_grad_strong else hi) - lo


@register_strategy("gmm_adaptive")
class GMMAdaptive(Strategy):
    """GMM-guided adaptive loss (see the module docstring for the equations and choices)."""

    graph_safe = False  # a GMM is refitted on the host each epoch
    detach_unimodal = False

    def __init__(self, *, warmup_epochs: int = 5, lambda_f: float = 1.0, lambda_g: float = 1.0,
                 lambda_a: float = 1.0, stop_grad_strong: bool = True, finetune_epochs: int = 0,
                 tau: float = 0.5, unimodal_weight: float = 1.0, seed: int = 0):
        super().__init__(unimodal_weight=unimodal_weight)
        if warmup_epochs < 0 or finetune_epochs < 0:
            raise ValueError("warmup_epochs and finetune_epochs must be >= 0")
        if not 0 < tau <= 1:
            raise ValueError(f"tau must be in (0, 1], got {tau}")
        self.warmup_epochs, self.finetune_epochs, self.tau = warmup_epochs, finetune_epochs, tau
        self.lambda_f, self.lambda_g, self.lambda_a = lambda_f, lambda_g, lambda_a
        self.stop_grad_strong, self.seed = stop_grad_strong, seed
        self._fit: GMMFit | None = None
        self.fits: list[tuple[int, GMMFit]] = []

    def setup(self, ctx: TrainContext) -> None:
        n = len(ctx.train_y)
        self._gamma = torch.zeros(n, device=ctx.train_y.device)
        self._keep = torch.ones(n, device=ctx.train_y.device)
        self._phase = "warmup"

    def phase(self, ctx: TrainContext, epoch: int) -> str:
        if epoch < self.warmup_epochs:
            return "warmup"
        if self.finetune_epochs and epoch >= ctx.config.epochs - self.finetune_epochs:
            return "finetune"
        return "adaptive"

    def on_epoch_start(self, ctx: TrainContext, epoch: int) -> None:
        phase = self.phase(ctx, epoch)
        if phase == "adaptive" or (phase == "finetune" and self._phase != "finetune"):
            self.refit(ctx, epoch)
        if phase == "finetune" and self._phase != "finetune":
            self._keep = (self._gamma < self.tau).float()
        self._phase = phase

    def refit(self, ctx: TrainContext, epoch: int) -> None:
        """Gap of every training sample (eval mode), GMM fit, posteriors ``gamma``."""
        p, _ = unimodal_true_scores(ctx.model, ctx.train_x, ctx.train_y, ctx.train_mask)
        d = gap_values(p).cpu().numpy()
        self._fit = fit_gap_gmm(d, previous=self._fit, seed=self.seed)
        self.fits.append((epoch + 1, self._fit))
        self._gamma = torch.as_tensor(self._fit.posterior(d), dtype=torch.float32, device=ctx.train_y.device)

    def loss(self, ctx: TrainContext, batch: Batch, out: ModelOutput) -> torch.Tensor:
        uni = self.unimodal_weight * sum(self.unimodal_losses(out, batch.y, batch.mask).values())
        if self._phase == "warmup":
            return self.fused_loss(out, batch.y, mask=batch.mask) + uni
        if self._phase == "finetune":
            keep = self._keep[batch.idx]
            per = self.fused_loss(out, batch.y, reduction="none", mask=batch.mask) + \
                self.unimodal_weight * self.unimodal_per_sample(out, batch.y, batch.mask)
            return (keep * per).sum() / keep.sum().clamp_min(1.0)
        return self.adaptive_loss(out, batch) + uni

    def adaptive_loss(self, out: ModelOutput, batch: Batch) -> torch.Tensor:
        gamma = self._gamma[batch.idx]
        p = {m: z.float().softmax(1).gather(1, batch.y[:, None])[:, 0] for m, z in out.unimodal_logits.items()}
        d = gap_values(p, stop_grad_strong=self.stop_grad_strong)
        if batch.mask is not None:  # the gap is defined where every modality is present
            d = d * torch.stack([v.bool() for v in batch.mask.values()], 0).all(0).to(d.dtype)
        ce = self.fused_loss(out, batch.y, reduction="none", mask=batch.mask)
        per = (1 + self.lambda_f * (1 - gamma)) * ce + self.lambda_g * (1 + gamma) * d.abs()
        mu_b = float(self._fit.means[0]) if self._fit is not None else 0.0
        align = ((gamma * d).sum() / gamma.sum().clamp_min(1e-6) - mu_b) ** 2
        return per.mean() + self.lambda_a * align

    def on_epoch_end(self, ctx: TrainContext, epoch: int, row: dict) -> None:
        row["phase"] = self._phase
        if self._fit is not None and self._phase != "warmup":
            row["gmm_weight_imbalanced"] = float(self._fit.weights[1])
            row["gmm_mean_balanced"] = float(self._fit.means[0])
            row["gmm_mean_imbalanced"] = float(self._fit.means[1])
            row["share_kept"] = float(self._keep.mean())

    # -- checkpoint state ------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Phase, the current GMM fit (warm start of the next refit), every fit so far, the
        posteriors ``gamma`` and the fine-tuning keep mask, as tensors and plain values."""
        return {"phase": self._phase, "fit": _fit_to_state(self._fit),
                "fits": [[int(e), _fit_to_state(f)] for e, f in self.fits],
                "gamma": self._gamma.detach().cpu(), "keep": self._keep.detach().cpu()}

    def load_state_dict(self, state: dict) -> None:
        device = self._gamma.device
        self._phase = str(state["phase"])
        self._fit = _fit_from_state(state["fit"])
        self.fits = [(int(e), _fit_from_state(f)) for e, f in state["fits"]]
        self._gamma = state["gamma"].to(device)
        self._keep = state["keep"].to(device)


def _fit_to_state(fit: GMMFit | None) -> dict | None:
    """A :class:`GMMFit` as a dict of tensors and numbers (readable with ``weights_only=True``)."""
    if fit is None:
        return None
    return {f.name: torch.from_numpy(np.asarray(v, dtype=np.float64).copy()) if isinstance(v, np.ndarray) else v
            for f in dataclasses.fields(fit) for v in [getattr(fit, f.name)]}


def _fit_from_state(state: dict | None) -> GMMFit | None:
    if state is None:
        return None
    return GMMFit(**{k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in state.items()})
