"""MCR: Multimodal Competition Regularizer (game-theoretic balancing of unique information).

Kontras, Strypsteen, Chatzichristos, Liang, Blaschko & De Vos, *Balancing Multimodal Training
Through Game-Theoretic Regularization* (arXiv 2411.07335, NeurIPS 2025); code kkontras/MCR
(``models/MCR_Models.py``); method note ``shared/methods/imbalance.md`` section D.

Decomposition: ``I(X1,X2;Y) = I(X1;Y|X2) + I(X2;Y|X1) + [I(X1;X2) - I(X1;X2|Y)]``. The loss is::

    L = CE(z_f, y) + w_uni sum_m CE(z_m, y) + L_MIPD + w_con L_Con + w_ceb L_CEB

**Latent-permutation estimate of unique information (L_MIPD).** Encode the batch, draw ``P``
random permutations ``pi`` of it; permuting ``z_n`` alone (``z~_n = z_n[pi]``) cuts it off from
the other latents. ``J_n = JSD( softmax f(z) || softmax f(z with z_n -> z~_n) )``, averaged over
the ``P * B`` rows (the code's ``js_divergence``, batchmean), estimates how much the fusion
relies on ``z_n`` beyond the others. ``J_{m<-n}`` is that JSD computed with every latent except
``z_m`` detached, so it sends gradient to encoder ``m`` only (the code's ``detach_a/detach_v``
passes). The game::

    L_MIPD = lambda sum_m [ -J_{m<-m} - k sum_{n != m} J_{m<-n} ]
    k = -1 greedy (each encoder makes its own latent matter and the others' matter less),
         0 independent, +1 collaborative (same gradient as the undetached sum_n -J_n).

The fusion head receives the gradient of every term.

**L_Con**: supervised cross-modal NT-Xent between every pair of embeddings (cosine similarity
/ temperature 0.5; every same-label pair is a positive, different labels the negatives), as
pytorch-metric-learning's ``NTXentLoss`` with labels, written out here.
**L_CEB** (``ceb_weight``, default 0 as in the CREMA-D run; the conformer runs use 1):
``MSE(concat_m z_m, g(stopgrad(z_f)))`` with a small MLP ``g`` [INFERRED Gaussian variational bound].

Defaults (run.sh, CREMA-D): ``lambda = 0.1``, ``P = 32``, ``w_con = 1``, game ``greedy``,
``w_uni = 0.01`` (``multil``). The stored code computes the regularizer and contrastive terms
but does not add them to the total; the wiring is UNCONFIRMED and we add them as the paper
describes. ``M > 2``: each ``z_m`` is permuted alone (``M`` targets x ``M`` permutations) with
``k`` over the sum ``n != m`` [INFERRED]. Permutations are uniform (no label filtering).

Example
-------
>>> from workbench import train
>>> run = train("synthetic-imbalance", epochs=2, strategy="mcr", strategy_params={"num_perms": 4},
...             dataset_params={"n": 300}, save=False, progress=False)
>>> "mcr_jsd_weak" in run.history.columns
True
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from workbench.balancing.common import maybe_sgd
from workbench.models import ModelOutput, MultimodalModel
from workbench.strategy import Batch, Strategy, TrainContext

GAMES = {"greedy": -1.0, "independent": 0.0, "collaborative": 1.0}


def js_divergence(logits_p: torch.Tensor, logits_q: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence between row softmaxes, averaged over rows (natural log)."""
    lp, lq = logits_p.float().log_softmax(1), logits_q.float().log_softmax(1)
    lm = torch.logsumexp(torch.stack([lp, lq]), 0) - np.log(2.0)
    kl = lambda a: (a.exp() * (a - lm)).sum(1)  # noqa: E731
    return (0.5 * kl(lp) + 0.5 * kl(lq)).mean()


def fuse_embeddings(model: MultimodalModel, emb: dict[str, torch.Tensor], mask=None) -> torch.Tensor:
    """Fused logits from (possibly permuted) embeddings; late fusion re-reads its unimodal heads."""
    uni = {m: model.unimodal_heads[m](emb[m]) for m in model.modalities} if model.fusion == "late" else {}
    return model.fuse(emb, uni, mask)


def permuted_jsd(model: MultimodalModel, emb: dict[str, torch.Tensor], permuted: str, perms: torch.Tensor,
                 *, grad_to: str | None = None, mask=None) -> torch.Tensor:
    """``J_{grad_to <- permuted}``: JSD between the fused prediction and the one with ``z_permuted``
    replaced by ``z_permuted[pi]`` for each of the ``P`` rows of ``perms`` (``(P, B)`` indices).

    ``grad_to``: detach every other latent (``None`` keeps every latent attached).
    """
    if grad_to is not None:
        emb = {m: z if m == grad_to else z.detach() for m, z in emb.items()}
    reps = perms.shape[0]
    tiled = {m: z.repeat(reps, 1) for m, z in emb.items()}
    tmask = None if mask is None else {m: v.repeat(reps) for m, v in mask.items()}
    shuffled = dict(tiled)
    shuffled[permuted] = emb[permuted][perms.reshape(-1)]
    if tmask is not None and permuted in tmask:
        tmask = dict(tmask)
        tmask[permuted] = mask[permuted][perms.reshape(-1)]
    return js_divergence(fuse_embeddings(model, tiled, tmask), fuse_embeddings(model, shuffled, tmask))


def mipd_regularizer(model: MultimodalModel, emb: dict[str, torch.Tensor], perms: torch.Tensor, *,
                     k: float, lam: float, mask=None) -> tuple[torch.Tensor, dict[str, float]]:
    """``lambda sum_m [-J_{m<-m} - k sum_{n != m} J_{m<-n}]`` and the own-JSD ``J_{m<-m}`` values."""
    total, own = torch.zeros((), device=perms.device), {}
    for m in model.modalities:
        j_own = permuted_jsd(model, emb, m, perms, grad_to=m, mask=mask)
        own[m] = float(j_own.detach())
        total = total - j_own
        if k != 0:
            for n in model.modalities:
                if n != m:
                    total = total - k * permuted_jsd(model, emb, n, perms, grad_to=m, mask=mask)
    return lam * total, own


def supervised_ntxent(za: torch.Tensor, zb: torch.Tensor, y: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """Cross-modal NT-Xent with labels: each same-label pair ``(i, j)`` is a positive scored
    against every different-label candidate of anchor ``i``; symmetric in ``a`` and ``b``."""
    def one_way(a, b):
        s = F.normalize(a.float(), dim=1) @ F.normalize(b.float(), dim=1).T / temperature
        pos = y[:, None] == y[None, :]
        neg_lse = torch.logsumexp(s.masked_fill(pos, float("-inf")), 1, keepdim=True)  # (B, 1)
        per_pair = -s + torch.logaddexp(s, neg_lse.expand_as(s))
        return per_pair[pos].mean()

    return 0.5 * (one_way(za, zb) + one_way(zb, za))


def permutation_jsd(model: MultimodalModel, x: dict[str, torch.Tensor], *, num_perms: int = 32,
                    seed: int = 0, mask=None) -> dict[str, float]:
    """How much the fused prediction moves when each latent alone is permuted (eval mode).

    Near 0 for a modality the fusion ignores; large for one it relies on.
    """
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        emb = model.encode(x, mask)
        b = next(iter(emb.values())).shape[0]
        perms = torch.argsort(torch.rand(num_perms, b, generator=gen), 1).to(next(iter(emb.values())).device)
        return {m: float(permuted_jsd(model, emb, m, perms, mask=mask)) for m in model.modalities}


class MCR(Strategy):
    """Multimodal Competition Regularizer (see the module docstring)."""

    name = "mcr"
    graph_safe = False
    detach_unimodal = False

    def __init__(self, *, lam: float = 0.1, num_perms: int = 32, game: str = "greedy",
                 contrastive_weight: float = 1.0, temperature: float = 0.5, ceb_weight: float = 0.0,
                 unimodal_weight: float = 0.01, optimizer: str | None = None, sgd_lr: float = 0.02,
                 sgd_momentum: float = 0.9):
        super().__init__(unimodal_weight=unimodal_weight)
        if game not in GAMES:
            raise ValueError(f"unknown game {game!r}; choose one of {sorted(GAMES)}")
        if num_perms < 1:
            raise ValueError(f"num_perms must be >= 1, got {num_perms}")
        self.lam, self.num_perms, self.game = lam, num_perms, game
        self.contrastive_weight, self.temperature, self.ceb_weight = contrastive_weight, temperature, ceb_weight
        self.optimizer, self.sgd_lr, self.sgd_momentum = optimizer, sgd_lr, sgd_momentum
        self._log: dict[str, list[float]] = {}

    def setup(self, ctx: TrainContext) -> None:
        maybe_sgd(ctx, self.optimizer, self.sgd_lr, self.sgd_momentum)
        self._ceb = None
        if self.ceb_weight > 0:
            model = ctx.model
            width = sum(model.unimodal_heads[m].in_features for m in model.modalities)
            self._ceb = nn.Sequential(nn.Linear(model.n_classes, 64), nn.ReLU(), nn.Linear(64, width)).to(ctx.device)
            ctx.optimizer.add_param_group({"params": list(self._ceb.parameters())})

    def loss(self, ctx: TrainContext, batch: Batch, out: ModelOutput) -> torch.Tensor:
        model = ctx.model
        total = self.fused_loss(out, batch.y) + self.unimodal_weight * sum(self.unimodal_losses(out, batch.y).values())
        b = len(batch.y)
        perms = torch.argsort(torch.rand(self.num_perms, b, device=batch.y.device), 1)
        reg, own = mipd_regularizer(model, out.embeddings, perms, k=GAMES[self.game], lam=self.lam, mask=batch.mask)
        total = total + reg
        for m, v in own.items():
            self._log.setdefault(f"mcr_jsd_{m}", []).append(v)
        if self.contrastive_weight > 0:
            pairs = list(itertools.combinations(model.modalities, 2))
            con = sum(supervised_ntxent(out.embeddings[a], out.embeddings[c], batch.y, self.temperature)
                      for a, c in pairs) / len(pairs)
            total = total + self.contrastive_weight * con
        if self._ceb is not None:
            target = torch.cat([out.embeddings[m] for m in model.modalities], 1).float()
            total = total + self.ceb_weight * F.mse_loss(target, self._ceb(out.logits.detach().float()))
        return total

    def on_epoch_end(self, ctx: TrainContext, epoch: int, row: dict) -> None:
        for key, values in self._log.items():
            row[key] = float(np.mean(values))
        self._log = {}

    # -- checkpoint state ------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The CEB predictor's weights (its parameters are in the optimizer, not in the model)."""
        return {} if self._ceb is None else {"ceb": self._ceb.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if (self._ceb is None) != ("ceb" not in state):
            raise ValueError(f"strategy {self.name!r}: checkpoint and config disagree on the CEB term (ceb_weight)")
        if self._ceb is not None:
            self._ceb.load_state_dict(state["ceb"])
