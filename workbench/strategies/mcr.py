"""MCR: Multimodal Competition Regularizer (game-theoretic balancing of unique information).

Kontras, Strypsteen, Chatzichristos, Liang, Blaschko & De Vos, *Balancing Multimodal Training
Through Game-Theoretic Regularization* (arXiv 2411.07335, NeurIPS 2025); code kkontras/MCR @338d370
(``models/MCR_Models.py::MCR_Model.forward/shuffle_data/_forward_main`` and
``agents/general_agent/helpers/Bias_Infusion.py::Bias_Infusion_MCR``); method note
``shared/methods/imbalance.md`` section D.

Decomposition: ``I(X1,X2;Y) = I(X1;Y|X2) + I(X2;Y|X1) + [I(X1;X2) - I(X1;X2|Y)]``. The loss is::

    L = CE(z_f, y) + w_uni sum_m CE(z_m, y) + L_MIPD + w_con L_Con + w_ceb L_CEB

**One step as the authors' code takes it** (``cls_type="linear"``, the CREMA-D release config):

1. The main forward pass (train mode) gives the fused logits ``z_f``, the embeddings ``h_m`` and
   the unimodal logits (on *attached* embeddings: ``shufflegradmulti=true``, so the unimodal
   CE terms, weight ``multil``, train the encoders).
2. ``shuffle_data`` encodes the batch *again* in eval mode (``self.eval()``: no dropout, no
   batch-norm update; ``training_mode=True`` skips that) with gradients, and tiles it ``P``
   times (``num_samples``), one uniform random permutation ``pi`` per copy.
3. For each permuted modality ``n`` and each encoder ``m`` the fusion head is re-run on the
   latents with ``h_n -> h_n[pi]`` and every modality's contribution except ``m``'s
   detached (``detach_a`` / ``detach_v``). For the linear head the detached contribution is
   the product ``W_j h_j`` (so ``W_j`` gets no gradient from that pass either) while the
   bias stays attached; for feature-level heads (gated, FiLM) the code detaches the features.
   ``J_{m<-n}`` is the Jensen-Shannon divergence (``js_divergence``, batchmean over the
   ``P * B`` rows) between that prediction and the **main pass's fused prediction**
   ``z_f`` (``ncombined``), which is *not* detached.
4. The game::

       greedy (k=-1):  L_MIPD = lambda sum_m [ -J_{m<-m} + sum_{n != m} J_{m<-n} ]
       independent:    L_MIPD = lambda sum_m [ -J_{m<-m} ]
       collaborative:  L_MIPD = lambda sum_n [ -J_{all<-n} ]   (nothing detached)

   In the greedy game the terms ``J_{m<-m}`` and ``J_{n<-m}`` have equal values and enter
   with opposite signs, so the gradients that reach the reference ``z_f``, the bias and any
   shared part of the head cancel exactly: the reference acts as if detached, and the fusion
   head's per-modality blocks get ``-grad J_{m<-m}`` from the own term and ``+grad J_{n<-m}``
   from the cross term. (An earlier version of this module computed the reference from the
   same partially detached latents, which routed a different reference gradient into each
   encoder -- 2.1x the authors' encoder gradient on one encoder -- and detached only the
   embeddings, so the head's blocks got cancelling gradients and no net signal.)
5. ``L_Con``: ``nt_xent_loss`` = pytorch-metric-learning ``NTXentLoss(temperature=0.5)`` on the
   L2-normalised embeddings of *all* modalities stacked, labels repeated: every same-label
   pair is a positive, **within a modality as well as across modalities**, each scored
   against the anchor's different-label rows; mean over positive pairs (written out in
   :func:`supervised_ntxent`).
6. ``total = CE + multil * sum CE_m + L_MIPD + contr_coeff * L_Con`` (the release file adds
   both terms to ``total``; the older copy the method note read did not).

Fusion heads here: ``concat`` and ``mlp`` follow the linear / "nonlinear" rule of step 3
(per-modality blocks of the first layer detached as products, bias attached); ``late``
detaches the other modalities' unimodal logits (the code's decision-level branch); ``sum``
and ``gated`` detach the other embeddings (the code's feature-level branch).

**L_CEB** (``ceb_weight``, default 0 as in the CREMA-D run; the conformer runs use 1):
``MSE(concat_m h_m, g(stopgrad(z_f)))`` with a small MLP ``g`` (the code's ``fc_yz``).

**Unimodal pre-training** (``pretrain_epochs``): the release configs load encoders that were
trained as unimodal models first (``pretrainedEncoder``). ``setup`` reproduces that by
training each encoder with its unimodal head on its modality alone for ``pretrain_epochs``
epochs (same optimizer type and settings, batch size and data as the run) before the joint
training starts; default 0 (off) outside the benchmark.

Defaults (run.sh, CREMA-D): ``lambda = 0.1``, ``P = 32``, ``w_con = 1``, game ``greedy``,
``w_uni = 0.01`` (``multil``), temperature 0.5.

Deviations [INFERRED / CHOICE]: ``M > 2``: each ``h_n`` is permuted alone and the game sums
over ``n != m`` (the code's MCR3D permutes subsets too). ``training_mode=True`` reuses the main
pass's embeddings instead of a second train-mode pass (same values up to dropout's draw).
Missing modalities: a permuted latent carries its presence flag along. Permutations are
uniform (the code's ``rand`` type; no label filtering).

Example
-------
>>> from workbench import train
>>> run = train("synthetic-imbalance", epochs=2, strategy="mcr", strategy_params={"num_perms": 4},
...             dataset_params={"n": 300}, save=False, progress=False)
>>> "mcr_jsd_weak" in run.history.columns
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from workbench.models.multimodal import ModelOutput, MultimodalModel
from workbench.strategies.base import Batch, Strategy, TrainContext, register_strategy

GAMES = {"greedy": -1.0, "independent": 0.0, "collaborative": 1.0}


def js_divergence(logits_p: torch.Tensor, logits_q: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence between row softmaxes, averaged over rows (natural log).

    The authors' ``js_divergence`` clamps probabilities at 1e-20 before the logs; computing in
    log space needs no clamp and agrees wherever no probability underflows."""
    lp, lq = logits_p.float().log_softmax(1), logits_q.float().log_softmax(1)
    lm = torch.logsumexp(torch.stack([lp, lq]), 0) - np.log(2.0)
    kl = lambda a: (a.exp() * (a - lm)).sum(1)  # noqa: E731
    return (0.5 * kl(lp) + 0.5 * kl(lq)).mean()


def routed_fuse(model: MultimodalModel, emb: dict[str, torch.Tensor], grad_to: str | None = None,
                mask: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """Fused logits in which only modality ``grad_to``'s contribution carries gradient
    (``None``: every contribution does), detaching as the authors' ``_forward_main`` does:
    the product ``W_m h_m`` for concat/mlp (linear / non-linear heads), the unimodal logits for
    late fusion, the embeddings for sum/gated (feature-level heads)."""
    keep = lambda m, t: t if grad_to is None or m == grad_to else t.detach()  # noqa: E731
    head = model.fusion_module
    uni = {m: model.unimodal_heads[m](emb[m]) for m in model.modalities} if head.uses_unimodal else {}
    return head.routed(emb, uni, keep, model._presence(emb, mask))


def fuse_embeddings(model: MultimodalModel, emb: dict[str, torch.Tensor], mask=None) -> torch.Tensor:
    """Fused logits from (possibly permuted) embeddings, every contribution attached."""
    return routed_fuse(model, emb, None, mask)


def permuted_jsd(model: MultimodalModel, emb: dict[str, torch.Tensor], permuted: str, perms: torch.Tensor,
                 *, grad_to: str | None = None, reference: torch.Tensor | None = None, mask=None) -> torch.Tensor:
    """``J_{grad_to <- permuted}``: JSD between the reference prediction and the fused prediction
    with ``h_permuted`` replaced by ``h_permuted[pi]`` for each of the ``P`` rows of ``perms``
    (``(P, B)`` indices), only ``grad_to``'s contribution attached (:func:`routed_fuse`).

    ``reference``: the ``(B, C)`` logits compared with (the authors use the main pass's fused
    prediction, attached); ``None`` fuses ``emb`` itself, every contribution attached.
    """
    reps = perms.shape[0]
    if reference is None:
        reference = fuse_embeddings(model, emb, mask)
    tiled = {m: z.repeat(reps, 1) for m, z in emb.items()}
    tiled[permuted] = emb[permuted][perms.reshape(-1)]
    tmask = None
    if mask is not None:
        tmask = {m: v.repeat(reps) for m, v in mask.items()}
        if permuted in tmask:
            tmask[permuted] = mask[permuted][perms.reshape(-1)]
    return js_divergence(routed_fuse(model, tiled, grad_to, tmask), reference.repeat(reps, 1))


def mipd_regularizer(model: MultimodalModel, emb: dict[str, torch.Tensor], perms: torch.Tensor, *,
                     k: float, lam: float, reference: torch.Tensor | None = None,
                     mask=None) -> tuple[torch.Tensor, dict[str, float]]:
    """``lambda sum_m [-J_{m<-m} - k sum_{n != m} J_{m<-n}]`` (collaborative ``k = 1``: the
    authors' undetached ``lambda sum_n -J_{all<-n}``) and the own-JSD ``J_{m<-m}`` values."""
    total, own = torch.zeros((), device=perms.device), {}
    if k == 1.0:
        for n in model.modalities:
            j = permuted_jsd(model, emb, n, perms, reference=reference, mask=mask)
            own[n] = float(j.detach())
            total = total - j
        return lam * total, own
    for m in model.modalities:
        j_own = permuted_jsd(model, emb, m, perms, grad_to=m, reference=reference, mask=mask)
        own[m] = float(j_own.detach())
        total = total - j_own
        if k != 0:
            for n in model.modalities:
                if n != m:
                    total = total - k * permuted_jsd(model, emb, n, perms, grad_to=m, reference=reference, mask=mask)
    return lam * total, own


def supervised_ntxent(embeddings: Sequence[torch.Tensor], y: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """Supervised NT-Xent over the stacked embeddings of every modality (the authors'
    ``nt_xent_loss`` = pytorch-metric-learning ``NTXentLoss`` with labels repeated).

    Rows are the L2-normalised embeddings of all modalities; each ordered pair ``(i, j)``,
    ``i != j``, with equal labels is a positive (within and across modalities) with loss
    ``-log(e^{s_ij} / (e^{s_ij} + sum_{k: y_k != y_i} e^{s_ik}))``, ``s = cos / temperature``;
    the result is the mean over positive pairs (0 when there is none).
    """
    z = F.normalize(torch.cat([e.float() for e in embeddings]), dim=1)
    labels = y.repeat(len(embeddings))
    s = z @ z.T / temperature
    same = labels[:, None] == labels[None, :]
    pos = same & ~torch.eye(len(z), dtype=torch.bool, device=z.device)
    if not pos.any():
        return s.sum() * 0.0
    neg_lse = torch.logsumexp(s.masked_fill(same, float("-inf")), 1, keepdim=True)  # -inf: no negatives
    per_pair = torch.logaddexp(s, neg_lse.expand_as(s)) - s
    return per_pair[pos].mean()


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


def pretrain_encoders(ctx: TrainContext, epochs: int, *, seed: int = 0) -> dict[str, float]:
    """Train each encoder with its unimodal head on its modality alone (the release configs'
    ``pretrainedEncoder``), ``epochs`` epochs with a fresh optimizer of the run's type and
    settings; returns each unimodal model's last-epoch training accuracy."""
    model, opt0 = ctx.model, ctx.optimizer
    keep = ("lr", "weight_decay", "momentum", "betas", "eps", "foreach")
    defaults = {k: v for k, v in opt0.defaults.items() if k in keep}
    batch_size = getattr(ctx.config, "batch_size", 64)
    gen = torch.Generator().manual_seed(seed)
    y = ctx.train_y
    acc = {}
    model.train()
    for m in model.modalities:
        params = list(model.encoders[m].parameters()) + list(model.unimodal_heads[m].parameters())
        opt = type(opt0)(params, **defaults)
        rows = torch.arange(len(y), device=y.device)
        if ctx.train_mask is not None and m in ctx.train_mask:
            rows = rows[ctx.train_mask[m].bool()]  # a unimodal model sees only samples that have m
        for _ in range(epochs):
            correct = 0
            for bi in rows[torch.randperm(len(rows), generator=gen).to(y.device)].split(batch_size):
                logits = model.unimodal_heads[m](model.encoders[m](model.standardize(m, ctx.train_x[m][bi])))
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(logits.float(), y[bi]).backward()
                opt.step()
                correct += int((logits.argmax(1) == y[bi]).sum())
            acc[m] = correct / max(len(rows), 1)
    for p in model.parameters():
        p.grad = None
    return acc


@register_strategy("mcr")
class MCR(Strategy):
    """Multimodal Competition Regularizer (see the module docstring).

    Parameters
    ----------
    lam : float
        Weight ``lambda`` of the game regularizer (0 switches it off, an ablation).
    num_perms : int
        Permutations ``P`` per batch (32 in the authors' runs).
    game : {"greedy", "independent", "collaborative"}
    contrastive_weight, temperature : float
        Weight of ``L_Con`` (0 switches it off) and its temperature (0.5).
    ceb_weight : float
        Weight of ``L_CEB`` (0).
    unimodal_weight : float
        ``multil``: weight of the unimodal CE terms, which train the encoders (0.01).
    pretrain_epochs : int
        Unimodal pre-training of every encoder before joint training (0: none).
    training_mode : bool
        Use the main pass's embeddings for the permuted passes instead of an eval-mode pass.
    """

    graph_safe = False
    detach_unimodal = False

    def __init__(self, *, lam: float = 0.1, num_perms: int = 32, game: str = "greedy",
                 contrastive_weight: float = 1.0, temperature: float = 0.5, ceb_weight: float = 0.0,
                 unimodal_weight: float = 0.01, pretrain_epochs: int = 0, training_mode: bool = False):
        super().__init__(unimodal_weight=unimodal_weight)
        if game not in GAMES:
            raise ValueError(f"unknown game {game!r}; choose one of {sorted(GAMES)}")
        if num_perms < 1:
            raise ValueError(f"num_perms must be >= 1, got {num_perms}")
        if pretrain_epochs < 0:
            raise ValueError(f"pretrain_epochs must be >= 0, got {pretrain_epochs}")
        self.lam, self.num_perms, self.game = lam, num_perms, game
        self.contrastive_weight, self.temperature, self.ceb_weight = contrastive_weight, temperature, ceb_weight
        self.pretrain_epochs, self.training_mode = pretrain_epochs, training_mode
        self._log: dict[str, list[float]] = {}

    def setup(self, ctx: TrainContext) -> None:
        self._pretrain_acc = {}
        if self.pretrain_epochs:
            self._pretrain_acc = pretrain_encoders(ctx, self.pretrain_epochs, seed=getattr(ctx.config, "seed", 0))
        self._ceb = None
        if self.ceb_weight > 0:
            model = ctx.model
            width = sum(model.unimodal_heads[m].in_features for m in model.modalities)
            self._ceb = nn.Sequential(nn.Linear(model.n_classes, 64), nn.ReLU(), nn.Linear(64, width)).to(ctx.device)
            ctx.optimizer.add_param_group({"params": list(self._ceb.parameters())})

    def _perms(self, b: int, device: torch.device) -> torch.Tensor:
        return torch.argsort(torch.rand(self.num_perms, b, device=device), 1)

    def _shuffle_embeddings(self, model: MultimodalModel, batch: Batch, out: ModelOutput) -> dict[str, torch.Tensor]:
        """The latents the permuted passes use: a second, eval-mode encoding (``shuffle_data``)."""
        if self.training_mode:
            return out.embeddings
        was_training = model.training
        model.eval()
        emb = model.encode(batch.x, batch.mask)
        model.train(was_training)
        return emb

    def loss(self, ctx: TrainContext, batch: Batch, out: ModelOutput) -> torch.Tensor:
        model = ctx.model
        total = self.fused_loss(out, batch.y, mask=batch.mask) + \
            self.unimodal_weight * sum(self.unimodal_losses(out, batch.y, batch.mask).values())
        if self.lam != 0:
            emb = self._shuffle_embeddings(model, batch, out)
            perms = self._perms(len(batch.y), batch.y.device)
            reg, own = mipd_regularizer(model, emb, perms, k=GAMES[self.game], lam=self.lam,
                                        reference=out.logits, mask=batch.mask)
            total = total + reg
            for m, v in own.items():
                self._log.setdefault(f"mcr_jsd_{m}", []).append(v)
        if self.contrastive_weight > 0:
            con = supervised_ntxent([out.embeddings[m] for m in model.modalities], batch.y, self.temperature)
            total = total + self.contrastive_weight * con
        if self._ceb is not None:
            target = torch.cat([out.embeddings[m] for m in model.modalities], 1).float()
            total = total + self.ceb_weight * F.mse_loss(target, self._ceb(out.logits.detach().float()))
        return total

    def on_epoch_end(self, ctx: TrainContext, epoch: int, row: dict) -> None:
        for key, values in self._log.items():
            row[key] = float(np.mean(values))
        if epoch == 0:
            for m, acc in self._pretrain_acc.items():
                row[f"mcr_pretrain_acc_{m}"] = acc
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
