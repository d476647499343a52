"""Train many small models of one architecture at once, as one stacked model (``torch.func``).

Small multimodal models are launch-bound: a 6-view MLP model spends its time in Python and
kernel launches, not arithmetic. Stacking K models' parameters (``stack_module_state``) and
running one vectorised forward/backward (``vmap`` over ``functional_call``) turns K small
steps into one step of K-times-larger kernels.

Two uses:

- **Coalitions** (:func:`train_coalitions`): all ``2^M - 1`` coalition models of a dataset for
  Shapley values by retraining. Coalition ``S`` is a model trained with every modality outside
  ``S`` masked (embedding zeroed, left out of late averaging, zero gate -- the masking of
  :class:`~workbench.models.multimodal.MultimodalModel`), so its absent encoders never receive gradient
  and it equals a model trained on ``S`` alone.
- **Seeds** (:func:`train_seeds`): one configuration with several seeds (each with its own
  split, initialisation and batch order), as ``workbench.train(seed=s)`` would train them.

Equivalence: each stacked model starts from the same initial weights the :class:`Trainer`
would build (``torch.manual_seed(seed)`` then ``build_model``), sees the same batches in the
same order (a ``torch.Generator`` seeded with its seed) and is updated by Adam, which is
elementwise, so one Adam over stacked tensors is K independent Adams. With dropout 0 the
parameters match separate training within float tolerance (tested to 1e-5). With dropout > 0,
masks are drawn independently per model (``randomness="different"``), so runs match in
distribution, not bit for bit. One deliberate difference: a coalition model's encoders for
modalities outside the coalition are never computed, differentiated or updated, so they keep
their initial weights (a model trained alone runs them on zeroed-out embeddings and only
shrinks them by weight decay); they never touch its outputs.

Only the naive joint-training loss (fused CE + unimodal probe CEs) is batched; strategies
that act between backward and step per model train one by one with the :class:`Trainer`.

Example
-------
>>> from workbench import load_dataset
>>> from workbench.training.stacked import all_coalitions, train_coalitions
>>> ds = load_dataset("synthetic-xor", n=300)
>>> fit = train_coalitions(ds, ds.split(seed=0), all_coalitions(ds.modality_names), epochs=2, progress=False)
>>> len(fit.models)
7
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

from workbench.data import MultimodalDataset, Splits
from workbench.models.multimodal import MultimodalModel, build_model
from workbench.progress import progress_bar
from workbench.tasks.classification import fused_loss, unimodal_losses
from workbench.training.optim import apply_schedule, make_optimizer
from workbench.training.trainer import TrainConfig, Trainer, resolve_device


def all_coalitions(modalities: list[str], *, include_empty: bool = False) -> list[tuple[str, ...]]:
    """Every subset of ``modalities`` in size order (the empty one only if asked)."""
    out = [c for k in range(0 if include_empty else 1, len(modalities) + 1)
           for c in itertools.combinations(modalities, k)]
    return out


@dataclass
class BatchedFit:
    """Trained models (one per coalition or seed) and their training losses per epoch."""

    models: list[MultimodalModel]
    masks: torch.Tensor  # (K, M) bool presence of each modality for each model
    modalities: list[str]
    losses: np.ndarray  # (epochs, K) mean training loss per epoch (NaN after every model stopped)
    labels: list  # coalition tuples or seeds
    epochs_run: np.ndarray | None = None  # (K,) epochs each model trained (early stopping)


def _init_models(ds: MultimodalDataset, cfg: TrainConfig, seeds: list[int], train_sets: list[np.ndarray]):
    """The models the Trainer would build for each seed, standardised on their training sets."""
    models, stats = [], {}
    for seed, train_idx in zip(seeds, train_sets, strict=True):
        torch.manual_seed(seed)  # the Trainer seeds before building, so initial weights match
        model = build_model(ds.shapes, ds.kinds, ds.n_classes, fusion=cfg.fusion, hidden=cfg.hidden,
                            embed=cfg.embed, dropout=cfg.dropout)
        key = np.asarray(train_idx).tobytes()
        if key not in stats:  # coalitions share one training set: standardise once
            idx = torch.as_tensor(train_idx, dtype=torch.long)
            model.set_standardization({m: t[idx] for m, t in ds.modalities.items()})
            stats[key] = {k: v.clone() for k, v in model.named_buffers()}
        model.load_state_dict(stats[key], strict=False)
        models.append(model)
    return models


def _loss_of(base: MultimodalModel, modalities: list[str], *, fused_only: bool = False):
    """Per-model loss; ``data_mask`` (``modality -> bool[b]`` or ``None``) is the dataset's own
    presence mask, combined (AND) with the model's coalition as the Trainer combines them."""
    def loss(params, buffers, x, y, present, data_mask):
        mask = {m: present[j].expand(y.shape[0]) & (True if data_mask is None else data_mask[m])
                for j, m in enumerate(modalities)}
        out = functional_call(base, (params, buffers), (x, mask), {"detach_unimodal": True})
        if fused_only:  # the held-out loss of early stopping: every sample, as the Trainer's evaluation
            return F.cross_entropy(out.logits, y)
        # the classification task's training loss: each head over the samples that have its modality
        return fused_loss(out, y, mask=mask) + sum(unimodal_losses(out, y, mask).values())

    return loss


def _encoder_modality(name: str) -> str | None:
    """The modality whose encoder owns parameter ``name`` (None for heads and gate)."""
    parts = name.split(".")
    return parts[1] if parts[0] == "encoders" else None


def _keep_present_encoder_rows(params: dict, rows: dict) -> dict:
    """Stacked parameters with encoder ``m`` kept only for the models that have ``m``.

    A coalition model never uses an absent modality (its embedding is zeroed), so its encoder
    is dead weight: computing, differentiating and updating it is wasted work -- half of all
    encoder work over the 2^M - 1 coalitions. Dropping those rows up front (rather than
    gathering present rows every step) also keeps the backward pass free of scatter-adds.
    """
    out = {}
    for name, value in params.items():
        m = _encoder_modality(name)
        out[name] = value if m is None else value[rows[m]]
    return out


def _sparse_coalition_loss(base: MultimodalModel, modalities: list[str], masks: torch.Tensor, *,
                           fused_only: bool = False):
    """Stacked loss for models sharing each batch, with encoder m run only for models that have m.

    ``params`` holds encoder ``m``'s parameters for the ``rows[m]`` models only (see
    :func:`_keep_present_encoder_rows`). The embeddings of absent modalities are exact zeros,
    as in the masked forward pass, so losses and gradients are those of :func:`_loss_of`.
    """
    rows = _presence_rows(masks, modalities)
    k_total = masks.shape[0]
    detach = not base.fusion_module.uses_unimodal  # as MultimodalModel.forward(detach_unimodal=True)

    def encode(m, enc_params, x):
        return functional_call(base.encoders[m], enc_params, (x,))

    encoders = {m: vmap(lambda p, x, m=m: encode(m, p, x), in_dims=(0, None), randomness="different")
                for m in modalities}

    def heads(params, emb, y, present, data_mask):
        mask = {m: present[j].expand(y.shape[0]) & (True if data_mask is None else data_mask[m])
                for j, m in enumerate(modalities)}
        uni = {m: functional_call(base.unimodal_heads[m], _sub(params, f"unimodal_heads.{m}."),
                                  (emb[m].detach() if detach else emb[m],))
               for m in modalities}
        fused = _fuse(base, params, emb, uni, mask)
        return torch.stack([fused, *uni.values()])  # (1 + M, b, C): every head's logits

    def loss(params, buffers, x, y, present, data_mask=None):
        emb = {}
        for m in modalities:
            xm = (x[m] - buffers[f"mean_{m}"][0]) / buffers[f"std_{m}"][0]  # shared data: same statistics
            h = encoders[m](_sub(params, f"encoders.{m}."), xm)  # (K_m, b, E)
            if data_mask is not None:  # samples where the dataset lacks m: zero embedding, as encode() does
                h = h * data_mask[m].to(h.dtype)[None, :, None]
            emb[m] = h.new_zeros((k_total, *h.shape[1:])).index_put((rows[m],), h)
        logits = vmap(heads, in_dims=(0, 0, None, 0, None), randomness="different")(
            {k: v for k, v in params.items() if _encoder_modality(k) is None}, emb, y, present, data_mask)
        # one cross-entropy over all heads of all models: (K, 1 + M, b)
        k, heads_n, b, c = logits.shape
        ce = _cross_entropy_rows(logits.reshape(-1, c), y.repeat(k * heads_n)).view(k, heads_n, b)
        if fused_only:  # held-out loss: every sample (see _loss_of)
            return ce[:, 0].mean(1)
        weight = _head_weights(present, data_mask, modalities, b).to(ce.dtype)
        return ((ce * weight).sum(2) / weight.sum(2).clamp_min(1.0)).sum(1)

    return loss


def _head_weights(present: torch.Tensor, data_mask: dict | None, modalities: list[str], b: int) -> torch.Tensor:
    """``bool (K, 1 + M, b)``: which samples each head of each model learns from, as the
    classification task's loss (:func:`workbench.tasks.classification.unimodal_losses`): head m
    where model k has m and the sample has m; the fused head where the sample has any of them."""
    uni = present[:, :, None].expand(-1, -1, b)
    if data_mask is not None:
        uni = uni & torch.stack([data_mask[m].bool() for m in modalities])[None]
    return torch.cat([uni.any(1, keepdim=True), uni], 1)


def _cross_entropy_rows(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-row cross-entropy, ``F.cross_entropy(..., reduction="none")`` computed by logsumexp:
    with few classes the CPU log-softmax kernel is slow (fwd+bwd 4.4 ms against 1.5 ms here
    for 28k rows of 10 classes)."""
    top = logits.detach().amax(1, keepdim=True)
    log_norm = (logits - top).exp().sum(1).log() + top[:, 0]
    return log_norm - logits.gather(1, y[:, None])[:, 0]


def _presence_rows(masks: torch.Tensor, modalities: list[str]) -> dict[str, torch.Tensor]:
    return {m: torch.nonzero(masks[:, j]).flatten() for j, m in enumerate(modalities)}


def _sub(params: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}


def _fuse(base: MultimodalModel, params: dict, emb: dict, uni: dict, mask: dict) -> torch.Tensor:
    """``base.fuse`` with the fusion head's parameters taken from ``params`` (its layers are
    registered on the model under the head's own names, so the keys are the head's)."""
    head = base.fusion_module
    own = {name: params[name] for name, _ in head.named_parameters()}
    return functional_call(head, own, (emb, uni, base._presence(emb, mask)))


def train_stacked(
    ds: MultimodalDataset, train_sets: list[np.ndarray], masks: torch.Tensor, seeds: list[int], *,
    config: TrainConfig, progress: bool = True, chunk_size: int | None = None, return_epochs: bool = False,
) -> tuple[list[MultimodalModel], np.ndarray]:
    """Train K models at once: model k uses ``train_sets[k]``, presence ``masks[k]`` and ``seeds[k]``.

    ``chunk_size`` trains the K models in chunks of that many (to bound memory); results do
    not depend on it. The optimizer is the config's, as in the Trainer (``config.optimizer``:
    Adam, or SGD with ``config.momentum``, both at ``config.lr``); both update every element on its
    own, so one optimizer over stacked tensors is K optimizers.

    With ``config.patience`` set, each model stops early as the :class:`Trainer` would (same
    validation slice of its training set, same rule; see :class:`_EarlyStopping`) and keeps its
    best weights; ``losses`` rows after every model has stopped are NaN. ``return_epochs=True``
    also returns the number of epochs each model trained.

    Stacked training is written for the classification task (its loss is the classification
    loss over stacked parameters); another ``config.task`` is refused before any work.
    """
    if config.task != "classification":
        raise ValueError(f"stacked training supports the classification task only, not {config.task!r}; "
                         "train those models one by one with train()/Trainer")
    k_total = len(seeds)
    chunk = chunk_size or k_total
    models, losses, epochs_run = [], [], []
    for start in range(0, k_total, chunk):
        sl = slice(start, min(start + chunk, k_total))
        m_chunk, l_chunk, e_chunk = _train_chunk(ds, train_sets[sl], masks[sl], seeds[sl], config, progress)
        models += m_chunk
        losses.append(l_chunk)
        epochs_run.append(e_chunk)
    if return_epochs:
        return models, np.concatenate(losses, axis=1), np.concatenate(epochs_run)
    return models, np.concatenate(losses, axis=1)


def _validation_split(ds: MultimodalDataset, train_idx: np.ndarray, cfg: TrainConfig, seed: int):
    """The Trainer's early-stopping split of one training set (the same slice it would carve)."""
    return Trainer(dataclasses.replace(cfg, seed=seed))._split_validation(ds, np.asarray(train_idx))


def _train_chunk(ds, train_sets, masks, seeds, cfg: TrainConfig, progress: bool):
    device = resolve_device(cfg.device)
    modalities = ds.modality_names
    early = cfg.patience is not None and cfg.val_fraction > 0
    val_sets = None
    if early:  # as the Trainer: a validation slice of each training set decides when to stop
        pairs = [_validation_split(ds, t, cfg, s) for t, s in zip(train_sets, seeds, strict=True)]
        train_sets, val_sets = [p[0] for p in pairs], [p[1] for p in pairs]
    models = _init_models(ds, cfg, seeds, train_sets)
    params, buffers = stack_module_state(models)
    # coalitions share data and batch order: gather each batch once and broadcast it to every model
    shared = len(set(seeds)) == 1 and all(np.array_equal(train_sets[0], t) for t in train_sets)
    rows = _presence_rows(masks, modalities)
    if shared:
        params = _keep_present_encoder_rows(params, rows)
    params = {k: v.detach().to(device).requires_grad_(True) for k, v in params.items()}
    buffers = {k: v.to(device) for k, v in buffers.items()}
    base = copy.deepcopy(models[0]).to("meta")
    base.train()
    opt = make_optimizer(params.values(), lr=cfg.lr, weight_decay=cfg.weight_decay, kind=cfg.optimizer,
                         momentum=cfg.momentum)
    # the dataset's own presence mask (missing modalities) is combined with each model's coalition
    data_mask = None if ds.mask is None else {m: ds.presence(m).to(device) for m in modalities}
    if shared:
        step = _sparse_coalition_loss(base, modalities, masks.to(device))
        heldout = _sparse_coalition_loss(base, modalities, masks.to(device), fused_only=True)
    else:
        dims = (0, 0, 0, 0, 0, None if data_mask is None else 0)
        step = vmap(_loss_of(base, modalities), in_dims=dims, randomness="different")
        heldout = vmap(_loss_of(base, modalities, fused_only=True), in_dims=dims, randomness="different")
    x_all = {m: t.to(device) for m, t in ds.modalities.items()}
    y_all = ds.y.to(device)
    idx_sets = torch.as_tensor(np.stack(train_sets[:1] if shared else train_sets), dtype=torch.long, device=device)
    present = masks.to(device)
    generators = [torch.Generator().manual_seed(s) for s in (seeds[:1] if shared else seeds)]
    n = idx_sets.shape[1]
    stopper = _EarlyStopping(params, len(seeds), cfg.patience, rows if shared else None) if early else None
    if early:
        vi = torch.as_tensor(np.stack(val_sets[:1] if shared else val_sets), dtype=torch.long, device=device)
        vi = vi[0] if shared else vi
        val_batch = ({m: t[vi] for m, t in x_all.items()}, y_all[vi], present,
                     None if data_mask is None else {m: v[vi] for m, v in data_mask.items()})
    history = []
    for epoch in progress_bar(range(cfg.epochs), enabled=progress, desc=f"train {len(seeds)} stacked models"):
        apply_schedule(opt, epoch, epochs=cfg.epochs, lr=cfg.lr, lr_min=cfg.lr_min, schedule=cfg.schedule)
        # one permutation per model from its own generator: the batch order of separate training
        perms = torch.stack([torch.randperm(n, generator=g) for g in generators]).to(device)
        order = torch.gather(idx_sets, 1, perms)
        if shared:
            order = order[0]
        total = torch.zeros(len(seeds), device=device)
        for s in range(0, n, cfg.batch_size):
            bi = order[..., s : s + cfg.batch_size]  # (b,) shared or (K, b) per model
            xb = {m: t[bi] for m, t in x_all.items()}
            mb = None if data_mask is None else {m: v[bi] for m, v in data_mask.items()}
            losses = step(params, buffers, xb, y_all[bi], present, mb)
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()  # models are independent: d(sum)/d(theta_k) = d(loss_k)/d(theta_k)
            opt.step()
            total += losses.detach() * bi.shape[-1]
        history.append((total / n).cpu().numpy())
        if stopper is not None:
            base.eval()  # the Trainer evaluates in eval mode (no dropout)
            with torch.no_grad():
                val_loss = heldout(params, buffers, *val_batch)
            base.train()
            if stopper.update(epoch, val_loss, params):
                break
    if stopper is not None:
        params = stopper.best
    hist = np.full((cfg.epochs, len(seeds)), np.nan)  # epochs never run (all models stopped) stay NaN
    if history:
        hist[: len(history)] = np.stack(history)
    fitted = _unstack(models, params, buffers, rows if shared else None)
    epochs_run = stopper.epochs_run(len(history)) if stopper is not None else np.full(len(seeds), len(history))
    return fitted, hist, epochs_run


class _EarlyStopping:
    """Per-model early stopping of stacked models, rule for rule the Trainer's.

    Each model keeps its best weights (lowest held-out fused loss, improvement > 1e-6) and
    stops once ``patience`` epochs pass without improvement; a stopped model still takes steps
    with the others (they share kernels) but its best weights and stop epoch are frozen, which
    is what it would have got alone. Training ends when every model has stopped.
    """

    def __init__(self, params: dict, k: int, patience: int, rows: dict | None):
        self.best = {name: v.detach().clone() for name, v in params.items()}
        self.best_loss = torch.full((k,), float("inf"))
        self.best_epoch = torch.zeros(k, dtype=torch.long)
        self.stopped_at = torch.full((k,), -1, dtype=torch.long)
        self.patience, self.rows = patience, rows

    def update(self, epoch: int, val_loss: torch.Tensor, params: dict) -> bool:
        loss = val_loss.detach().double().cpu()
        active = self.stopped_at < 0
        improved = active & (loss < self.best_loss.double() - 1e-6)
        stop = active & ~improved & (epoch - self.best_epoch >= self.patience)
        self.best_loss = torch.where(improved, loss.float(), self.best_loss)
        self.best_epoch[improved] = epoch
        self.stopped_at[stop] = epoch
        for name, value in params.items():
            m = _encoder_modality(name) if self.rows is not None else None
            sel = improved if m is None else improved[self.rows[m].cpu()]  # encoder m: its models' rows
            if sel.any():
                self.best[name][sel.to(value.device)] = value.detach()[sel.to(value.device)]
        return bool((self.stopped_at >= 0).all())

    def epochs_run(self, n_epochs: int) -> np.ndarray:
        """Epochs each model would have trained alone (the Trainer's ``stopped_epoch_``)."""
        return np.where(self.stopped_at.numpy() >= 0, self.stopped_at.numpy() + 1, n_epochs)


def _unstack(models: list[MultimodalModel], params: dict, buffers: dict, rows: dict | None) -> list[MultimodalModel]:
    """Load each model's slice of the stacked tensors back into it (in eval mode).

    With ``rows`` (coalitions), encoder ``m`` was trained only for the models that have ``m``;
    the others keep its initial weights, which they never use. (A model trained alone would
    have decayed them by weight decay, without any effect on its outputs.)
    """
    position = {m: {int(k): i for i, k in enumerate(r)} for m, r in (rows or {}).items()}
    for k, model in enumerate(models):
        state = {}
        for name, value in {**params, **buffers}.items():
            m = _encoder_modality(name) if rows is not None else None
            if m is None:
                state[name] = value[k]
            elif k in position[m]:
                state[name] = value[position[m][k]]
        model.load_state_dict({n: v.detach().cpu() for n, v in state.items()}, strict=False)
        model.eval()
    return models


def coalition_masks(coalitions: list[tuple[str, ...]], modalities: list[str]) -> torch.Tensor:
    """(K, M) boolean presence matrix of coalitions over ``modalities``."""
    unknown = {m for c in coalitions for m in c} - set(modalities)
    if unknown:
        raise ValueError(f"coalitions name unknown modalities {sorted(unknown)}; the dataset has {modalities}")
    return torch.tensor([[m in c for m in modalities] for c in coalitions], dtype=torch.bool)


def train_coalitions(
    ds: MultimodalDataset, splits: Splits, coalitions: list[tuple[str, ...]] | None = None, *,
    epochs: int = 30, seed: int = 0, progress: bool = True, chunk_size: int | None = None, **config,
) -> BatchedFit:
    """Train one model per coalition, all at once; see the module docstring.

    Every coalition model shares the seed (same initialisation, same batch order), so they
    differ only in which modalities they see. ``config`` (the optimizer included) are :class:`~workbench.training.trainer.TrainConfig` fields.
    """
    coalitions = coalitions or all_coalitions(ds.modality_names)
    cfg = TrainConfig(epochs=epochs, seed=seed, progress=progress, **config)
    masks = coalition_masks(coalitions, ds.modality_names)
    k = len(coalitions)
    models, losses, epochs_run = train_stacked(
        ds, [splits.train] * k, masks, [seed] * k, config=cfg, progress=progress, chunk_size=chunk_size,
        return_epochs=True)
    return BatchedFit(models, masks, ds.modality_names, losses, list(coalitions), epochs_run)


def train_seeds(
    ds: MultimodalDataset, seeds: list[int], *, epochs: int = 30, split: dict | None = None,
    progress: bool = True, **config,
) -> tuple[BatchedFit, list[Splits]]:
    """Train the same configuration under several seeds at once (split, init and batch order per seed)."""
    splits = [ds.split(seed=s, **(split or {})) for s in seeds]
    sizes = {len(sp.train) for sp in splits}
    if len(sizes) != 1:
        raise ValueError(f"seeds give training sets of different sizes {sorted(sizes)}; train them one by one")
    cfg = TrainConfig(epochs=epochs, progress=progress, **config)
    masks = torch.ones(len(seeds), len(ds.modality_names), dtype=torch.bool)
    models, losses, epochs_run = train_stacked(ds, [sp.train for sp in splits], masks, list(seeds), config=cfg,
                                               progress=progress, return_epochs=True)
    return BatchedFit(models, masks, ds.modality_names, losses, list(seeds), epochs_run), splits


def coalition_dataset_mask(ds: MultimodalDataset, coalition: tuple[str, ...]) -> MultimodalDataset:
    """``ds`` with every modality outside ``coalition`` marked absent for every sample.

    The dataset's own presence mask is kept (AND): a modality of the coalition that a sample
    lacks stays absent. Training this with the :class:`Trainer` is the one-by-one reference
    for a coalition model.
    """
    mask = {m: ds.presence(m).clone() & (m in coalition) for m in ds.modality_names}
    return MultimodalDataset(dict(ds.modalities), ds.y, groups=ds.groups, mask=mask, classes=ds.classes,
                             kinds=ds.kinds, name=ds.name)


# nominal training throughput used for the rough time estimate (multiply-adds x 2 per second);
# measured order of magnitude: 63 mfeat coalition models, 10 epochs, 13 s on a 2-core CPU
NOMINAL_FLOPS = {"cpu": 2e10, "cuda": 2e11}


@dataclass
class StackedCost:
    """Rough cost of training ``n_models`` stacked coalition models (see :func:`estimate_coalition_cost`)."""

    n_models: int
    params_per_model: int       # parameters a coalition model trains (its present encoders + heads)
    bytes_per_model: int        # peak memory one stacked model adds while training
    bytes_total: int            # all models trained at once
    chunk_size: int             # models per chunk that fit the memory budget
    seconds: float              # rough training time at NOMINAL_FLOPS

    def describe(self) -> str:
        return (f"{self.n_models} coalition models x {self.params_per_model:,} parameters: about "
                f"{self.bytes_total / 2**30:.2f} GiB at once ({self.bytes_per_model / 2**20:.1f} MiB each, "
                f"chunks of {self.chunk_size}), roughly {self.seconds:.0f} s")


def estimate_coalition_cost(ds: MultimodalDataset, coalitions: list[tuple[str, ...]], n_train: int,
                            config: TrainConfig, *, memory_budget_gb: float = 2.0) -> StackedCost:
    """Memory and rough time of training the ``coalitions`` models, before any training.

    Memory per model: its parameters as a module (what :func:`_init_models` builds) plus, for
    the trained ones, parameter, gradient, two Adam moments and (with early stopping) a best
    copy, plus the activations of one batch (input, hidden and embedding of every present
    encoder, logits of every head; x3 for what autograd keeps). Time: 6 flops per trained
    parameter per sample (forward + backward) x ``n_train`` x ``epochs`` at ``NOMINAL_FLOPS``
    for the device -- an order of magnitude, not a prediction. ``chunk_size`` is the number of
    models whose memory fits ``memory_budget_gb``.
    """
    model = build_model(ds.shapes, ds.kinds, ds.n_classes, fusion=config.fusion, hidden=config.hidden,
                        embed=config.embed, dropout=config.dropout)
    per_encoder = {m: sum(p.numel() for p in model.encoders[m].parameters()) for m in ds.modality_names}
    full = sum(p.numel() for p in model.parameters())
    other = full - sum(per_encoder.values())
    feat = {m: int(np.prod(ds.shapes[m])) for m in ds.modality_names}
    copies = 4 + (config.patience is not None)
    b = config.batch_size
    trained, peak = [], []
    for c in coalitions:
        p = other + sum(per_encoder[m] for m in c)
        act = b * (sum(feat[m] + config.hidden + config.embed for m in c) + (len(ds.modality_names) + 1) * ds.n_classes)
        trained.append(p)
        peak.append(4 * (full + copies * p + 3 * act))
    per_model = int(np.mean(peak)) if peak else 0
    budget = int(memory_budget_gb * 2**30)
    chunk = max(1, min(len(coalitions), budget // max(per_model, 1)))
    flops = 6.0 * float(np.sum(trained)) * n_train * config.epochs
    device = resolve_device(config.device).type
    return StackedCost(len(coalitions), int(np.mean(trained)) if trained else 0, per_model, int(np.sum(peak)),
                       int(chunk), flops / NOMINAL_FLOPS.get(device, NOMINAL_FLOPS["cpu"]))
