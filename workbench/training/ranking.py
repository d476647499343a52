"""BPR training of recommenders over one or two domains, with MICRec's cross-domain anchors.

The :class:`~workbench.training.trainer.Trainer` iterates over the samples of a
:class:`~workbench.data.MultimodalDataset`; a recommender trains on sampled (user, positive,
negative) triples over a whole interaction graph and anneals its feature matrix every epoch, so
this small loop keeps the Trainer's machinery instead: seeded by ``seed`` through
:func:`~workbench.training.trainer.seed_everything`, a ``progress`` bar from
:func:`workbench.progress.progress_bar`, a per-epoch ``history`` frame, ``device`` resolved and
checked as the Trainer's (``auto``: CUDA when present; the sparse graph matrices are rebuilt on
the weights' device), checkpoints with every RNG and resume by ``checkpoint_path`` (an unusable
checkpoint is moved aside with a warning, as the Trainer does). The run store, run ids, the lock
and the run panels come from :func:`workbench.training.train_ranking.train_ranking`, which
calls this loop (``train(..., task="ranking")`` goes there too).

Per epoch and domain: ``len(train)`` triples in batches of ``batch_size`` (INMO's epoch), loss
``BPR + l2_reg * mean ||.||^2 + aux_reg * BPR_aux`` (INMO: l2 of the representations, aux only
for INMO models; MF/LightGCN: l2 of the raw embeddings), Adam; then INMO's annealing.

Cross-domain anchors (MICRec, design ours, UNCONFIRMED): with ``anchors=True`` a user with
history in the other domain is represented in domain ``d`` by ``(h_u^d + h_u^other)/2``
(``transfer="mean"``; ``transfer="map"``: ``h_u^d + W h_u^other`` with a learned ``W``, zero at the
start) and each step adds ``anchor_reg * mean ||h_u^A - h_u^B||^2`` over a batch of anchor users
(users with training interactions in both); ``anchors=False`` trains the domains independently.
The default ``anchor_reg = 0.03`` and ``transfer="mean"`` were chosen by validation Recall@20 on
synthetic tuning seeds (``benchmarks/micrec_synthetic.py``: 0.03 > 0.1 > 0.3 > 1.0); ``map`` was
below ``mean`` on validation in an exploratory run (on the evaluation seeds 0-2, so that choice is
not independent of them).

Early stopping (``valid_every``): validation Recall@20, INMO's ``val_interval``/``patience``.

Example
-------
>>> from data_catalog.synthetic_recsys import synthetic_recsys
>>> data = synthetic_recsys(n_users=60, n_items=40, seed=0)
>>> fit = fit_ranking(data, model="mf", epochs=2, progress=False)
>>> sorted(fit.models), len(fit.history)
(['A', 'B'], 2)
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from workbench.models.inmo import INMO, MF, BPRSampler, LightGCN, Popularity, bpr_loss
from workbench.progress import progress_bar
from workbench.stats.ranking import as_item_sets, full_ranking, ranking_metrics
from workbench.store.atomic import atomic_write_bytes, jsonable
from workbench.training.trainer import (
    _rng_state,
    _set_rng_state,
    move_aside,
    resolve_device,
    seed_everything,
)

__all__ = ["MODELS", "RankingFit", "check_fit_settings", "evaluate_ranking", "fit_ranking", "score_vectors"]

MODELS = ("popularity", "mf", "lightgcn", "imf", "igcn", "micrec")
CHECKPOINT_FORMAT = 1


@dataclass
class RankingFit:
    """Trained models per domain, the history and the settings."""

    kind: str
    models: dict[str, Any]
    anchors: bool
    history: pd.DataFrame = field(default_factory=pd.DataFrame)
    params: dict = field(default_factory=dict)
    maps: torch.nn.ModuleDict | None = None


def _build(
    kind: str, data, d: str, *, dim: int, n_layers: int, dropout: float, feature_ratio: float
):
    dom = data.domains[d]
    common = {"n_users": data.n_users, "n_items": dom.n_items, "pairs": dom.train}
    if kind == "popularity":
        return Popularity(**common)
    if kind == "mf":
        return MF(**common, dim=dim)
    if kind == "lightgcn":
        return LightGCN(**common, dim=dim, n_layers=n_layers)
    layers = 0 if kind == "imf" else n_layers
    mods = dom.item_features if kind == "micrec" else None
    return INMO(
        **common,
        dim=dim,
        n_layers=layers,
        dropout=dropout,
        feature_ratio=feature_ratio,
        modalities=mods,
    )


def _user_reps(
    fit: RankingFit, reps: dict[str, tuple[torch.Tensor, torch.Tensor]]
) -> dict[str, torch.Tensor]:
    """Per domain, the user vectors that score: mixed with the other domain's for users with history there."""
    out = {d: r[0] for d, r in reps.items()}
    if not fit.anchors or len(reps) != 2:
        return out
    a, b = list(reps)
    has = {
        d: torch.as_tensor(np.bincount(fit.models[d].pairs[:, 0], minlength=len(out[d])) > 0,
                           device=out[d].device)
        for d in reps
    }
    for d, o in ((a, b), (b, a)):
        mix = has[o][:, None]
        if fit.maps is not None:
            out[d] = reps[d][0] + mix * fit.maps[f"{o}_to_{d}"](reps[o][0])
        else:
            out[d] = torch.where(mix, 0.5 * (reps[d][0] + reps[o][0]), reps[d][0])
    return out


def check_fit_settings(data, *, model: str, domains: list[str] | None, anchors: bool, transfer: str) -> list[str]:
    """The domains a fit trains (all of ``data``'s by default), or a one-line ``ValueError`` naming the
    setting that ``data`` cannot take; what :func:`fit_ranking` and the run store check before any work."""
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    domains = list(domains or data.domains)
    missing = [d for d in domains if d not in data.domains]
    if missing:
        raise ValueError(
            f"domains: {missing[0]!r} is not a domain of {data.name!r} ({sorted(data.domains)})"
        )
    if anchors and len(domains) != 2:
        raise ValueError(f"anchors=True needs exactly two domains; the fit has {domains}")
    if transfer not in ("mean", "map"):
        raise ValueError(f"transfer must be 'mean' or 'map', got {transfer!r}")
    return domains


def fit_ranking(
    data,
    *,
    model: str = "micrec",
    domains: list[str] | None = None,
    epochs: int = 30,
    batch_size: int = 2048,
    lr: float = 1e-3,
    l2_reg: float | None = None,
    aux_reg: float = 0.01,
    anchors: bool = False,
    anchor_reg: float = 0.03,
    transfer: str = "mean",
    dim: int = 64,
    n_layers: int = 3,
    dropout: float = 0.3,
    feature_ratio: float = 1.0,
    seed: int = 0,
    progress: bool = True,
    device: str = "auto",
    valid_every: int = 0,
    patience: int = 3,
    checkpoint_path: str | Path | None = None,
) -> RankingFit:
    """Train ``model`` (one of :data:`MODELS`) on every domain of ``data`` (a ``RecData``).

    ``l2_reg`` defaults to the official configs' values: 1e-4 for MF/LightGCN (raw embeddings),
    0 for IGCN/MICRec and 1e-5 for IMF (representations).

    ``valid_every = n > 0``: early stopping as INMO's trainer does it (``val_interval``,
    ``patience``): every ``n`` epochs the validation Recall@20 of the known users (mean over
    the trained domains) is measured, the best epoch's parameters (and INMO's ``alpha``) are kept,
    and training stops after ``patience`` checks without improvement. The history gets a
    ``valid_recall@20`` column and ``fit.params["best_epoch"]`` the epoch kept. The test items are
    never read.

    ``checkpoint_path``: after every epoch the parameters (and INMO's ``alpha``), the optimizer,
    both random generators, the history and the early-stopping state are written there atomically;
    a call with an existing checkpoint of the same settings (``epochs`` may grow) resumes from it
    and gives the same numbers as an uninterrupted run (tested). A checkpoint of other settings, of
    another format or that cannot be read is moved aside as ``NAME.bad-N`` with a warning and the
    fit starts again (nothing on disk is lost).

    ``device``: ``"auto"`` (CUDA when present, else the CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``;
    a device this machine lacks is a one-line ``ValueError`` before any work.
    """
    domains = check_fit_settings(data, model=model, domains=domains, anchors=anchors, transfer=transfer)
    dev = _check_device(device)
    seed_everything(seed)
    rng = np.random.default_rng(seed)
    models = {
        d: _build(
            model, data, d, dim=dim, n_layers=n_layers, dropout=dropout, feature_ratio=feature_ratio
        )
        for d in domains
    }
    for m in models.values():
        if isinstance(m, torch.nn.Module):
            m.to_device(dev)
    fit = RankingFit(
        kind=model,
        models=models,
        anchors=anchors,
        params={
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "dim": dim,
            "seed": seed,
            "n_layers": n_layers,
            "dropout": dropout,
            "aux_reg": aux_reg,
            "anchor_reg": anchor_reg,
            "transfer": transfer,
        },
    )
    if model == "popularity":
        return fit
    inmo = model in ("imf", "igcn", "micrec")
    if l2_reg is None:
        l2_reg = {"mf": 1e-4, "lightgcn": 1e-4, "imf": 1e-5}.get(model, 0.0)
    if anchors and transfer == "map" and model != "popularity":
        fit.maps = torch.nn.ModuleDict(
            {
                f"{o}_to_{d}": torch.nn.Linear(dim, dim, bias=False)
                for d, o in (domains, domains[::-1])
            }
        )
        for lin in fit.maps.values():
            torch.nn.init.zeros_(lin.weight)
        fit.maps.to(dev)
        models_and_maps = {**models, "_maps": fit.maps}
    else:
        models_and_maps = models
    params = [p for m in models_and_maps.values() for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=lr)
    anchor_users = data.anchors() if anchors else np.zeros(0, dtype=np.int64)
    n_steps = max(1, int(np.ceil(max(len(data.domains[d].train) for d in domains) / batch_size)))
    samplers = {d: BPRSampler(data.domains[d].train, models[d].n_items) for d in domains}
    rows = []
    best = (-np.inf, 0, None)  # (valid recall, epoch, state)
    start, stopped = 0, False
    settings = {k: v for k, v in fit.params.items() if k != "epochs"} | {
        "model": model,
        "domains": domains,
        "anchors": anchors,
    }
    resumed = _load_checkpoint(checkpoint_path, settings, models_and_maps, opt, rng)
    if resumed is not None:
        start, rows, best, stopped = resumed
    for epoch in progress_bar(
        range(start, epochs if not stopped else start),
        enabled=progress,
        desc=f"train {model} on {data.name}",
    ):
        for m in models.values():
            m.train()
        total = 0.0
        for _ in range(n_steps):
            reps = {d: m.reps() for d, m in models.items()}
            users_rep = _user_reps(fit, reps)
            loss = torch.zeros((), device=dev)
            for d, m in models.items():
                u, i, j = (torch.as_tensor(a, device=dev) for a in samplers[d](batch_size, rng))
                U, V = users_rep[d], reps[d][1]
                loss = loss + bpr_loss((U[u] * V[i]).sum(1), (U[u] * V[j]).sum(1))
                if inmo:
                    sq = U[u].pow(2).sum(1) + V[i].pow(2).sum(1) + V[j].pow(2).sum(1)
                    loss = loss + l2_reg * sq.mean() + aux_reg * m.aux_loss(batch_size, rng)
                else:
                    ue, ie = m.raw()
                    loss = (
                        loss
                        + l2_reg
                        * (ue[u].pow(2).sum(1) + ie[i].pow(2).sum(1) + ie[j].pow(2).sum(1)).mean()
                    )
            if len(anchor_users):
                a, b = domains
                pick = torch.as_tensor(anchor_users[rng.integers(0, len(anchor_users), batch_size)], device=dev)
                loss = (
                    loss + anchor_reg * (reps[a][0][pick] - reps[b][0][pick]).pow(2).sum(1).mean()
                )
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach())
        for m in models.values():
            m.on_epoch_end()
        rows.append({"epoch": epoch + 1, "train_loss": total / n_steps})
        if valid_every and (epoch + 1) % valid_every == 0:
            for m in models.values():
                m.eval()
            score = float(evaluate_ranking(fit, data, split="valid", ks=(20,))["recall@20"].mean())
            rows[-1]["valid_recall@20"] = score
            if score > best[0]:
                best = (score, epoch + 1, _state(models_and_maps))
            elif (epoch + 1 - best[1]) // valid_every >= patience:
                stopped = True
        if checkpoint_path is not None:
            _save_checkpoint(checkpoint_path, settings=settings, epoch=epoch + 1, models=models_and_maps,
                             opt=opt, rng=rng, rows=rows, best=best, stopped=stopped)
        if stopped:
            break
    fit.history = pd.DataFrame(rows)
    if best[2] is not None:
        _restore(models_and_maps, best[2])
        fit.params["best_epoch"] = best[1]
    for m in models.values():
        m.eval()
    return fit


def _check_device(device: str) -> torch.device:
    """``device`` checked like :class:`~workbench.training.config.TrainConfig`'s (one line naming it)."""
    from workbench.training.config import TrainConfig

    TrainConfig(device=device)  # raises "device 'cuda': CUDA is not available ..." before any work
    return resolve_device(device)


def _save_checkpoint(path, *, settings: dict, epoch: int, models: dict[str, Any], opt, rng: np.random.Generator,
                     rows: list[dict], best: tuple, stopped: bool) -> None:
    """Everything a resumed fit needs, written atomically: parameters (and INMO's ``alpha``), the
    optimizer, the sampler's generator and every global RNG (the Trainer's, CUDA's included), the
    history and the early-stopping state."""
    ck = {
        "format": CHECKPOINT_FORMAT,
        "settings": jsonable(settings),
        "epoch": epoch,
        "state": _state(models),
        "opt": opt.state_dict(),
        "rng": rng.bit_generator.state,
        "global_rng": _rng_state(),
        "rows": rows,
        "best": best,
        "stopped": stopped,
    }
    buffer = io.BytesIO()
    torch.save(ck, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _load_checkpoint(path, settings: dict, models: dict[str, Any], opt, rng: np.random.Generator):
    """``(start, rows, best, stopped)`` from the checkpoint at ``path``, or None when there is none.

    A checkpoint that cannot be used (unreadable or truncated, pickled objects, written by other
    settings or another format) is moved aside as ``NAME.bad-N`` with a warning naming it and the fit
    starts from epoch 0, as the :class:`~workbench.training.trainer.Trainer` does: nothing on disk is lost.
    """
    if path is None or not Path(path).exists():
        return None
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
            have = ck.get("format") if isinstance(ck, dict) else type(ck).__name__
            raise ValueError(f"not a ranking checkpoint of format {CHECKPOINT_FORMAT} (format {have})")
        if ck["settings"] != jsonable(settings):
            raise ValueError(f"written by a fit with other settings ({ck['settings']})")
        _restore(models, ck["state"])
        opt.load_state_dict(ck["opt"])
        rng.bit_generator.state = ck["rng"]
        _set_rng_state(ck["global_rng"])
        return int(ck["epoch"]), [dict(r) for r in ck["rows"]], tuple(ck["best"]), bool(ck["stopped"])
    except Exception as exc:  # noqa: BLE001 -- unpickling, zip, key and shape errors all mean "unusable"
        first = (re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().splitlines() or [type(exc).__name__])[0]
        aside = move_aside(path)
        warnings.warn(f"checkpoint {path} cannot be resumed from ({first[:300]}); moved it to {aside.name} "
                      "and restarted from epoch 0", RuntimeWarning, stacklevel=3)
        return None


def _state(models: dict[str, Any]) -> dict[str, tuple[dict, float]]:
    return {
        d: ({k: v.detach().clone() for k, v in m.state_dict().items()}, getattr(m, "alpha", None))
        for d, m in models.items()
    }


def _restore(models: dict[str, Any], state: dict[str, tuple[dict, float]]) -> None:
    for d, m in models.items():
        weights, alpha = state[d]
        m.load_state_dict(weights)
        if alpha is not None:
            m.alpha = alpha
            m.update_feat()


def score_vectors(fit: RankingFit) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per domain, ``(user vectors, item vectors)`` whose inner products are the scores (eval mode)."""
    if fit.kind == "popularity":
        return {d: m.score_vectors() for d, m in fit.models.items()}
    with torch.no_grad():
        reps = {d: m.reps() for d, m in fit.models.items()}
        users = _user_reps(fit, reps)
    return {d: (users[d].detach().cpu().numpy(), reps[d][1].detach().cpu().numpy()) for d in reps}


def evaluate_ranking(
    fit: RankingFit,
    data,
    *,
    users: str = "known",
    ks: tuple[int, ...] = (10, 20),
    chunk: int = 2048,
    split: str = "test",
    domains: list[str] | None = None,
) -> pd.DataFrame:
    """Per-user test metrics in every domain: ``domain, setting, user, n_test, recall@k, ndcg@k``.

    ``users="known"``: users trained on, ranking every item but their training and validation
    items. ``users="new"``: the held-out users folded in from their history (INMO's protocol:
    the graphs are rebuilt with ``train + fold_in``, no parameter changes), ranking every item
    but their fold-in and validation items; the graphs are restored afterwards.
    ``split="valid"`` scores the validation items instead (training or fold-in items excluded):
    what model selection reads, so the test items are never looked at while tuning.
    ``domains`` limits the evaluation to some domains (all by default).
    """
    if users not in ("known", "new"):
        raise ValueError(f"users must be 'known' or 'new', got {users!r}")
    if split not in ("test", "valid"):
        raise ValueError(f"split must be 'test' or 'valid', got {split!r}")
    new = users == "new"
    if new:
        for d, m in fit.models.items():
            dom = data.domains[d]
            m.set_graph(np.concatenate([dom.train, dom.fold_in]))
    try:
        vecs = score_vectors(fit)
    finally:
        if new:
            for d, m in fit.models.items():
                m.set_graph(data.domains[d].train)
    frames = []
    for d, (U, V) in vecs.items():
        if domains is not None and d not in domains:
            continue
        dom = data.domains[d]
        target = dom.test if split == "test" else dom.valid
        keep_new = np.isin(target[:, 0], data.new_users)
        test = target[keep_new] if new else target[~keep_new]
        seen = dom.fold_in if new else dom.train
        if split == "test":
            seen = np.concatenate([seen, dom.valid])
        top = full_ranking(
            U, V, k=max(ks), exclude=as_item_sets(seen, n_users=data.n_users), chunk=chunk
        )
        f = ranking_metrics(top, as_item_sets(test, n_users=data.n_users), ks=ks)
        f.insert(0, "setting", "inductive" if new else "transductive")
        f.insert(0, "domain", d)
        frames.append(f)
    return pd.concat(frames, ignore_index=True)
