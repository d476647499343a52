"""MultiFair: dual-level (modality and group) gradient modulation for fair multimodal training.

Zubair et al., "MultiFair: Multimodal Balanced Fairness-Aware Medical Classification with
Dual-Level Gradient Modulation", arXiv 2510.07328 (IEEE TMI 2026); official code
github.com/Zubair063/MultiFair (HEAD ff1b467). The paper's full text was not available; the
equations follow the released code as read in ``shared/methods/multifair.md``, with the bugs
it documents fixed as stated below. The modality level is CGGM (Guo et al., NeurIPS 2024).

Per batch ``t`` (M modalities, groups ``g`` of one attribute, unimodal probes ``C_m`` trained
on *detached* embeddings, as in the code):

Modality level
    ``A_m^t``  exact batch AUC of probe m (kept from the last batch when a class is missing);
    ``dA_m = A_m^t - A_m^{t-1}``;
    ``B_m = (sum_j |dA_j| - |dA_m|) / (sum_j |dA_j| + eps)``, ``eps = 1e-8`` (absolute deltas as
    in MultiFair's code; both deltas 0 gives ``B = 1``; for M=2, ``B_1 + B_2 = 1``);
    magnitude: after ``backward()`` every gradient of encoder m is multiplied by
    ``rho * B_m * F_m`` (fusion head and probes untouched), then the gradients of every
    parameter except the probes are clipped to norm ``clip_norm = 0.8`` (the code's probes have
    their own optimiser and are outside its ``clip_grad_norm_``; clipping them too would let the
    probes' gradient norm shrink the model's step: over 10 seeds of synthetic-group-noise that
    old clip alone made the accuracy gap A-B shrink by -0.022 [-0.031, -0.013] against naive; with
    the probes left out the change is -0.005 [-0.024, +0.013], see the README);
    direction: ``L_gm = (1/M) [sum_m |B_m| - sum_m B_m cos(g_F^m, g_m)]`` where ``g_F^m`` is the
    gradient of the fused loss w.r.t. the fusion head's weight block that reads modality m
    (the whole weight for sum/gated fusion) and ``g_m`` the gradient of probe m's CE loss w.r.t.
    its weight, evaluated on the *non-detached* embedding.
    **Fix:** the released code finds no ``g_F`` (L_gm = 0) and builds L_gm from detached
    ``.grad`` tensors; here both gradients come from ``torch.autograd.grad(create_graph=True)``
    (double backprop), so ``lambda_gm * L_gm`` sends gradients to encoders and heads.
    Late fusion has no fusion head weight, and the ``mlp`` head's joint layer is not a
    classifier whose gradient compares with a probe's: the direction term is 0 there.

Group level
    ``S_g(s) = mean_{i in P_g, j in N_g} sigmoid((s_i - s_j) / T)``, the smooth
    Wilcoxon-Mann-Whitney AUC on the logit margin ``s = z_1 - z_0`` (multiclass: one-vs-rest
    margin ``z_c - logsumexp_{k != c} z_k``, macro over classes present), ``T = 1``.
    **Fix:** the released surrogate ``1 - mean log(1 + exp(-(p_i - p_j)))`` on probabilities
    lives in [-0.313, 0.687] (random ~0.30) while its EMA starts at 0.5; ``S`` lies in (0, 1),
    random ranking gives 0.5 and a perfect, well-separated ranking tends to 1, so the EMA start
    0.5 is neutral. A group with one class in the batch keeps its EMA (neutral 0.5 at start).
    EMAs ``Ahat <- 0.9 Ahat + 0.1 S`` for each probe and group (``Ahat_{m,g}``) and for the fused
    model (``Ahat_{F,g}``); ``f_{.,g} = 1 + gamma (mean_g Ahat_{.,g} - Ahat_{.,g}) / tau``.
    Released rule kept: ``F_m = sum_g (n_g/n) f_{m,g}`` scales encoder m when the batch's exact
    fused group-AUC gap exceeds ``tau`` (exactly 1 on a balanced two-group batch, so weak).
    **Design choice (the note's suggestion), what makes the group level act:** per-sample
    weights ``w_i = f_{F,g(i)}`` from the *fused* model's EMA, clipped to ``weight_bounds``
    (0.1, 10) and normalised to mean 1 in the batch, on the fused CE loss (applied every batch;
    all ones when the group AUCs are equal), and a differentiable fairness term
    ``L_fair = mean_g |S_g(fused margin) - mean_g' S_g'|`` on the current batch (the released
    one is a detached float), added as ``beta * L_fair`` when the gap trigger fires.

Objective: ``L = sum_i w_i CE_i / n + lambda_gm L_gm + 1[gap > tau] beta L_fair + sum_m CE(C_m(h_m.detach()))``.

Defaults are the code's ``main()`` values: ``rho=1.2, lambda_gm=0.15, tau=0.04, beta=0.5,
gamma=0.3, clip_norm=0.8, ema=0.9``. The code's 10 epochs / AdamW 3e-5 / batch 32 belong to
ViT encoders; here the trainer's own optimiser settings are used. The probes share the
trainer's optimiser (the code gives them their own AdamW; they see detached features either way).
The trainer's AMP is bfloat16 autocast with no GradScaler, so the gradient scaling acts on
unscaled gradients. ``group_level=False`` is "modality balancing alone"; ``GroupReweight``
(``group_reweight``) is the group weights alone. Group attributes are only read for
weighting, never fed to the model.

Example
-------
>>> from workbench import train  # doctest: +SKIP
>>> run = train("synthetic-group-noise", strategy="multifair", strategy_params={"group": "group"})  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from workbench.models.multimodal import ModelOutput
from workbench.stats.intervals import auc_score, rank_auc
from workbench.strategies.base import Batch, Strategy, TrainContext, register_strategy

EPS = 1e-8


# -- pure pieces (tested one by one) ----------------------------------------------------------------
def balancing_factor(delta_auc: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """``B_m = (sum_j |dA_j| - |dA_m|) / (sum_j |dA_j| + eps)``; all ones when every delta is 0.

    Example
    -------
    >>> balancing_factor(torch.tensor([0.03, 0.01]))
    tensor([0.2500, 0.7500])
    """
    a = delta_auc.abs()
    total = a.sum()
    if float(total) == 0.0:
        return torch.ones_like(a)
    return (total - a) / (total + eps)


def exact_auc(scores: torch.Tensor, positive: torch.Tensor) -> float:
    """Exact AUC of ``scores`` for the ``positive`` mask (ties count 1/2); NaN with one class.

    Not differentiable (see :func:`surrogate_auc`); :func:`workbench.stats.intervals.rank_auc`.

    Examples
    --------
    >>> exact_auc(torch.tensor([0.9, 0.5, 0.5, 0.1]), torch.tensor([True, True, False, False]))
    0.875
    """
    s, pos = scores.detach().float().cpu().numpy(), positive.cpu().numpy().astype(bool)
    return float(rank_auc(s[pos], s[~pos]))


def margins(logits: torch.Tensor) -> torch.Tensor:
    """Per-class one-vs-rest logit margins ``z_c - logsumexp_{k != c} z_k`` (n, C); binary: ``z_1 - z_0``."""
    logits = logits.float()
    c = logits.shape[1]
    if c == 2:
        d = logits[:, 1] - logits[:, 0]
        return torch.stack([-d, d], 1)
    eye = torch.eye(c, dtype=torch.bool, device=logits.device)
    others = logits[:, None, :].expand(-1, c, -1).masked_fill(eye[None], float("-inf"))
    return logits - torch.logsumexp(others, 2)


def surrogate_auc(logits: torch.Tensor, y: torch.Tensor, temperature: float = 1.0) -> torch.Tensor | None:
    """Smooth AUC ``mean_{i in P, j in N} sigmoid((s_i - s_j)/T)`` on logit margins, in (0, 1).

    Binary: the positive class's margin; multiclass: macro over classes with both positives and
    negatives. Returns None when no class has both (neutral; the caller keeps its EMA).

    Example
    -------
    >>> z = torch.tensor([[0.0, 5.0], [0.0, -5.0]]); y = torch.tensor([1, 0])
    >>> round(float(surrogate_auc(z, y)), 4)
    1.0
    """
    s = margins(logits)
    classes = [1] if logits.shape[1] == 2 else range(logits.shape[1])
    vals = []
    for c in classes:
        pos = y == c
        if pos.all() or not pos.any():
            continue
        diff = s[pos, c][:, None] - s[~pos, c][None, :]
        vals.append(torch.sigmoid(diff / temperature).mean())
    return torch.stack(vals).mean() if vals else None


def group_factors(ema: torch.Tensor, gamma: float, tau: float) -> torch.Tensor:
    """``f_g = 1 + gamma (mean_g ema_g - ema_g) / tau`` (last axis = groups)."""
    return 1 + gamma * (ema.mean(-1, keepdim=True) - ema) / tau


def released_batch_factor(ema_mg: torch.Tensor, counts: torch.Tensor, gamma: float, tau: float) -> torch.Tensor:
    """The released ``F_m = sum_g (n_g/n) f_{m,g}`` for EMAs (M, G) and group counts (G,)."""
    share = counts.float() / counts.sum().clamp_min(1)
    return (group_factors(ema_mg, gamma, tau) * share).sum(-1)


def sample_weights(codes: torch.Tensor, ema_g: torch.Tensor, gamma: float, tau: float,
                   bounds: tuple[float, float] = (0.1, 10.0)) -> torch.Tensor:
    """Per-sample weights ``f_{g(i)}`` clipped to ``bounds`` and normalised to mean 1."""
    w = group_factors(ema_g, gamma, tau).clamp(*bounds)[codes]
    return w / w.mean()


def scale_encoder_grads(model, scales: dict[str, float]) -> None:
    """Multiply every gradient of encoder ``m`` by ``scales[m]`` in place."""
    for m, s in scales.items():
        for p in model.encoder_parameters(m):
            if p.grad is not None:
                p.grad.mul_(s)


def fusion_weight_blocks(model) -> dict[str, tuple[int, int]] | None:
    """Per modality, the ``(lo, hi)`` columns of the fusion layer's weight that read it (the
    head's :meth:`~workbench.models.fusion.FusionHead.modality_columns`); None where the head has
    no linear classifier on the embeddings (late; mlp, whose first layer's gradient is not a
    classifier's)."""
    head = model.fusion_module
    if head.joint is None or not head.linear:
        return None
    return {m: (head.modality_columns(m).start, head.modality_columns(m).stop) for m in model.modalities}


# -- the strategy ------------------------------------------------------------------------------------
def clipped_parameters(model) -> list[torch.nn.Parameter]:
    """Every parameter but the unimodal probes' (what MultiFair's gradient clip covers)."""
    return [p for name, p in model.named_parameters() if not name.startswith("unimodal_heads.")]


@register_strategy("multifair")
class MultiFair(Strategy):
    """MultiFair training: modality-level (B_m, rho, live direction) and group-level modulation.

    Parameters
    ----------
    rho, lambda_gm, beta, gamma, tau : float
        Scale of encoder gradients, weight of the direction term, weight of the fairness term,
        group modulation strength and gap threshold (code defaults 1.2, 0.15, 0.5, 0.3, 0.04).
    ema : float
        EMA momentum of the group AUC estimates (0.9).
    clip_norm : float or None
        Gradient-norm clip after scaling over every parameter but the probes (0.8; None disables).
    modality_level, group_level : bool
        Switch each level; ``group_level=False`` is modality balancing alone.
    direction : bool
        Switch the direction term ``L_gm`` (ablation; ``False`` equals ``lambda_gm=0``).
    group : str or list of str, optional
        Group attribute(s) in the dataset's groups table (a list is their intersection);
        default: the first attribute.
    temperature : float
        Temperature of the surrogate AUC's sigmoid.
    weight_bounds : (float, float)
        Clip of the per-sample group factors before normalisation.
    unimodal_weight : float
        Weight of the probes' CE loss (probes see detached embeddings).
    """

    graph_safe = False  # host-side AUCs and triggers every batch
    detach_unimodal = True

    def __init__(self, *, rho: float = 1.2, lambda_gm: float = 0.15, beta: float = 0.5, gamma: float = 0.3,
                 tau: float = 0.04, ema: float = 0.9, clip_norm: float | None = 0.8,
                 modality_level: bool = True, group_level: bool = True, direction: bool = True,
                 group: str | Sequence[str] | None = None,
                 temperature: float = 1.0, weight_bounds: Sequence[float] = (0.1, 10.0),
                 unimodal_weight: float = 1.0):
        super().__init__(unimodal_weight=unimodal_weight)
        self.rho, self.lambda_gm, self.beta, self.gamma, self.tau = rho, lambda_gm, beta, gamma, tau
        self.ema, self.clip_norm = ema, clip_norm
        self.modality_level, self.group_level, self.direction = modality_level, group_level, direction
        self.group = group if group is None or isinstance(group, str) else list(group)
        self.temperature = temperature
        self.weight_bounds = tuple(float(b) for b in weight_bounds)

    # -- setup ---------------------------------------------------------------------------------
    def setup(self, ctx: TrainContext) -> None:
        mods = ctx.model.modalities
        dev = ctx.device
        self._mods = mods
        self._prev_auc = torch.full((len(mods),), float("nan"))
        self._scales = {m: 1.0 for m in mods}
        self._epoch_log: dict[str, list[float]] = {}
        self._n_groups = 0
        if self.group_level:
            codes = self._codes(ctx.train_groups, where="training set")
            self._n_groups = int(codes.max()) + 1
            self._ema_mg = torch.full((len(mods), self._n_groups), 0.5, device=dev)
            self._ema_fg = torch.full((self._n_groups,), 0.5, device=dev)

    def _attrs(self, groups: dict[str, torch.Tensor]) -> list[str]:
        if self.group is None:
            return [next(iter(groups))]
        attrs = [self.group] if isinstance(self.group, str) else list(self.group)
        unknown = [a for a in attrs if a not in groups]
        if unknown:
            raise ValueError(f"strategy {self.name}: no group attribute {unknown[0]!r}; the dataset has {list(groups)}")
        return attrs

    def _codes(self, groups: dict[str, torch.Tensor] | None, *, where: str) -> torch.Tensor:
        if not groups:
            raise ValueError(f"strategy {self.name}: the {where} has no group attributes; "
                             "use a dataset with groups or set group_level=False")
        attrs = self._attrs(groups)
        codes = groups[attrs[0]].long()
        for a in attrs[1:]:  # intersection: mixed-radix code over the attributes' full ranges
            radix = int(self._radix[a]) if hasattr(self, "_radix") else int(groups[a].max()) + 1
            codes = codes * radix + groups[a].long()
        if where == "training set":
            self._radix = {a: int(groups[a].max()) + 1 for a in attrs}
        return codes

    # -- per batch ----------------------------------------------------------------------------------
    def _log(self, key: str, value: float) -> None:
        self._epoch_log.setdefault(key, []).append(value)

    def _balance(self, out: ModelOutput, y: torch.Tensor, mask: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Probe AUCs on the batch (each over the samples that have its modality) -> B_m (ones when
        the modality level is off)."""
        if not self.modality_level:
            return torch.ones(len(self._mods))

        def rows(m):
            return slice(None) if mask is None or m not in mask else mask[m].bool()

        auc = torch.tensor([_batch_auc(out.unimodal_logits[m].detach()[rows(m)], y[rows(m)]) for m in self._mods])
        auc = torch.where(torch.isnan(auc), self._prev_auc, auc)
        delta = torch.nan_to_num(auc - self._prev_auc, nan=0.0)
        self._prev_auc = auc
        b = balancing_factor(delta)
        for m, v in zip(self._mods, b.tolist(), strict=True):
            self._log(f"mf_B_{m}", v)
        return b

    def _group_state(self, out: ModelOutput, y: torch.Tensor, codes: torch.Tensor):
        """Update EMAs; return (fused per-group surrogates, trigger, F_m)."""
        fused_s: dict[int, torch.Tensor] = {}
        exact = []
        for g in range(self._n_groups):
            sel = codes == g
            if not sel.any():
                continue
            s = surrogate_auc(out.logits[sel], y[sel], self.temperature)
            if s is None:
                continue
            fused_s[g] = s
            self._ema_fg[g] = self.ema * self._ema_fg[g] + (1 - self.ema) * s.detach()
            exact.append(_batch_auc(out.logits[sel].detach(), y[sel]))
            for i, m in enumerate(self._mods):
                sm = surrogate_auc(out.unimodal_logits[m][sel].detach(), y[sel], self.temperature)
                self._ema_mg[i, g] = self.ema * self._ema_mg[i, g] + (1 - self.ema) * sm
        trigger = len(exact) >= 2 and (max(exact) - min(exact)) > self.tau
        counts = torch.bincount(codes, minlength=self._n_groups)
        f_m = released_batch_factor(self._ema_mg, counts, self.gamma, self.tau) if trigger else torch.ones(len(self._mods))
        self._log("mf_trigger", float(trigger))
        return fused_s, trigger, f_m.cpu()

    def loss(self, ctx: TrainContext, batch: Batch, out: ModelOutput) -> torch.Tensor:
        y = batch.y
        b = self._balance(out, y, batch.mask)
        f_m = torch.ones(len(self._mods))
        extra = torch.zeros((), device=y.device)
        if self.group_level:
            codes = self._codes(batch.groups, where="batch")
            fused_s, trigger, f_m = self._group_state(out, y, codes)
            if self.gamma != 0:
                w = sample_weights(codes, self._ema_fg, self.gamma, self.tau, self.weight_bounds)
                fused = (self.fused_loss(out, y, reduction="none", mask=batch.mask) * w).mean()
            else:
                fused = self.fused_loss(out, y, mask=batch.mask)
            if trigger and self.beta != 0 and len(fused_s) >= 2:
                s = torch.stack(list(fused_s.values()))
                l_fair = (s - s.mean()).abs().mean()
                extra = extra + self.beta * l_fair
                self._log("mf_L_fair", float(l_fair.detach()))
            for g in range(self._n_groups):
                self._log(f"mf_ema_auc_g{g}", float(self._ema_fg[g]))
        else:
            fused = self.fused_loss(out, y, mask=batch.mask)
        if self.direction and self.lambda_gm != 0:
            l_gm = self.direction_loss(ctx, out, y, fused, b, batch.mask)
            if l_gm is not None:
                extra = extra + self.lambda_gm * l_gm
                self._log("mf_L_gm", float(l_gm.detach()))
        self._scales = {m: self.rho * float(b[i]) * float(f_m[i]) for i, m in enumerate(self._mods)}
        uni = self.unimodal_losses(out, y, batch.mask)
        return fused + extra + self.unimodal_weight * sum(uni.values())

    def direction_loss(self, ctx: TrainContext, out: ModelOutput, y: torch.Tensor, fused: torch.Tensor,
                       b: torch.Tensor, mask: dict[str, torch.Tensor] | None = None) -> torch.Tensor | None:
        """Live ``L_gm = (1/M)[sum |B_m| - sum B_m cos(g_F^m, g_m)]`` by double backprop."""
        model = ctx.model
        blocks = fusion_weight_blocks(model)
        if blocks is None:
            return None
        w_f = model.fusion_head.weight
        (g_f,) = torch.autograd.grad(fused, w_f, create_graph=True)
        terms = []
        for i, m in enumerate(self._mods):
            head = model.unimodal_heads[m]
            ce = F.cross_entropy(head(out.embeddings[m]).float(), y, reduction="none")
            present = mask[m].to(ce.dtype) if mask is not None and m in mask else torch.ones_like(ce)
            probe_loss = (ce * present).sum() / present.sum().clamp_min(1.0)  # samples that have m
            (g_m,) = torch.autograd.grad(probe_loss, head.weight, create_graph=True)
            lo, hi = blocks[m]
            cos = F.cosine_similarity(g_f[:, lo:hi].reshape(1, -1), g_m.reshape(1, -1), eps=EPS)[0]
            terms.append(b[i].to(cos) * cos)
        return (b.abs().sum().to(y.device) - torch.stack(terms).sum()) / len(self._mods)

    def after_backward(self, ctx: TrainContext, batch: Batch, out: ModelOutput) -> None:
        if self.modality_level or self.group_level:
            scale_encoder_grads(ctx.model, self._scales)
        if self.clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(clipped_parameters(ctx.model), self.clip_norm)

    def on_epoch_end(self, ctx: TrainContext, epoch: int, row: dict) -> None:
        for k, v in self._epoch_log.items():
            row[k] = float(sum(v) / len(v))
        self._epoch_log = {}

    # -- checkpoint state ------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Last batch AUC of each probe (for ``dA``), encoder scales, group EMAs and radices."""
        state = {"prev_auc": self._prev_auc.clone(), "scales": dict(self._scales), "n_groups": self._n_groups}
        if self.group_level:
            state.update(ema_mg=self._ema_mg.detach().cpu(), ema_fg=self._ema_fg.detach().cpu(),
                         radix=dict(getattr(self, "_radix", {})))
        return state

    def load_state_dict(self, state: dict) -> None:
        self._prev_auc = state["prev_auc"].clone()
        self._scales = {str(k): float(v) for k, v in state["scales"].items()}
        if int(state["n_groups"]) != self._n_groups:
            raise ValueError(f"strategy {self.name!r}: checkpoint has {state['n_groups']} groups, data {self._n_groups}")
        if self.group_level:
            self._ema_mg = state["ema_mg"].to(self._ema_mg.device)
            self._ema_fg = state["ema_fg"].to(self._ema_fg.device)
            self._radix = {str(k): int(v) for k, v in state["radix"].items()}


def _batch_auc(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Exact batch AUC of logits (binary: margin of class 1; multiclass: macro one-vs-rest)."""
    return auc_score(y.cpu().numpy(), margins(logits.detach()).cpu().numpy())


@register_strategy("group_reweight")
class GroupReweight(MultiFair):
    """Group reweighting alone: MultiFair's adaptive per-sample group weights, nothing else.

    Weights ``w_i = f_{g(i)}`` from the EMA of each group's surrogate AUC of the fused model
    (see :class:`MultiFair`); no modality modulation, no direction or fairness term, no clipping.
    """


    def __init__(self, *, gamma: float = 0.3, tau: float = 0.04, ema: float = 0.9,
                 group: str | Sequence[str] | None = None, temperature: float = 1.0,
                 weight_bounds: Sequence[float] = (0.1, 10.0), unimodal_weight: float = 1.0):
        super().__init__(rho=1.0, lambda_gm=0.0, beta=0.0, gamma=gamma, tau=tau, ema=ema, clip_norm=None,
                         modality_level=False, group_level=True, group=group, temperature=temperature,
                         weight_bounds=weight_bounds, unimodal_weight=unimodal_weight)
