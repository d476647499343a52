"""Ranking runs: train a recommender and record it in the run store, as :func:`~workbench.training.train.train` does.

:func:`train_ranking` is the run-store entry point of the ranking task (``train(..., task="ranking")``
calls it): the settings are a :class:`~workbench.training.config.RankingConfig` (checked, one
line naming the field, before any data are read); the run id is
``DATASET-MODEL-bpr[+anchors]-sSEED-HASH`` (the hash covers the settings that change results,
the dataset's name and parameters and a fingerprint of its interactions and item features); the
run holds the store's lock while it trains, checkpoints every epoch into its ``.incomplete``
folder and resumes from there after a kill (:func:`~workbench.training.ranking.fit_ranking`:
the same numbers as an uninterrupted run); the folder is written atomically.

What the run folder holds (read back by :mod:`workbench.tasks.ranking`):

* ``predictions.parquet``: per (domain, setting, user) the test Recall@K and NDCG@K, for the
  users trained on (``transductive``) and the held-out users folded in from their history
  (``inductive``), with the user's group attributes (``group_<attribute>``);
* ``metrics.json``: their means per domain and setting; ``history.parquet``: the BPR loss per
  epoch (and the validation Recall@20 with early stopping);
* ``model.pt``: every domain's weights, INMO's annealed ``alpha`` and the anchor maps;
  :func:`load_ranking_fit` rebuilds the fit from it and the data;
* ``results/``: with ``analyses=True`` the recommendation analysis (metrics by domain, setting and
  user group with bootstrap intervals, the group disparities), for MICRec the item modalities'
  Shapley values (NDCG-based, masked value function), and one user's top-K list per domain: the
  run panel, the dashboard and ``workbench report`` show their figures.

Example
-------
>>> import tempfile
>>> run = train_ranking("synthetic-recsys", dataset_params={"n_users": 60, "n_items": 40}, model="mf",
...                     epochs=2, runs_dir=tempfile.mkdtemp(), progress=False, analyses=False)
>>> run.run_id.startswith("synthetic-recsys-mf-bpr-s0-"), sorted(run.accuracy()["model"])
(True, ['A (inductive)', 'A (transductive)', 'B (inductive)', 'B (transductive)'])
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from data_catalog.recsys import RecData, load_recdata
from workbench.store.runs import RUN_FORMAT_VERSION, Run, RunError, RunStore, hash_array, hash_frame
from workbench.training.config import RankingConfig, config_fields
from workbench.training.ranking import RankingFit, check_fit_settings, evaluate_ranking, fit_ranking
from workbench.training.train import _fields_doc, _id_part

__all__ = ["group_columns", "load_ranking_data", "load_ranking_fit", "ranking_run_id", "recdata_fingerprint", "train_ranking"]


def recdata_fingerprint(data: RecData) -> str:
    """A hash of interaction data: every domain's split pairs and item features, the held-out
    users and the users table (part of the run id, as :func:`~workbench.store.runs.dataset_fingerprint`)."""
    h = hashlib.blake2b(digest_size=8)
    h.update(f"{data.name}|{data.n_users}".encode())
    hash_array(h, "new_users", np.asarray(data.new_users))
    for d in sorted(data.domains):
        dom = data.domains[d]
        h.update(f"domain {d} {dom.n_items}".encode())
        for part in ("train", "valid", "test", "fold_in"):
            hash_array(h, f"{d}:{part}", np.asarray(getattr(dom, part)))
        for m in sorted(dom.item_features):
            hash_array(h, f"{d}:x:{m}", np.asarray(dom.item_features[m]))
    hash_frame(h, data.users)
    return h.hexdigest()


def ranking_run_id(dataset: str, cfg: RankingConfig, dataset_params: dict | None = None,
                   fingerprint: str | None = None) -> str:
    """``DATASET-MODEL-bpr[+anchors]-sSEED-HASH`` (every readable part reduced to ``[A-Za-z0-9_-]``).

    Examples
    --------
    >>> ranking_run_id("ml-100k", RankingConfig(model="igcn", seed=2)).startswith("ml-100k-igcn-bpr-s2-")
    True
    """
    extra: dict[str, Any] = {"dataset": dataset, "dataset_params": dataset_params or {}, "task": "ranking"}
    if fingerprint is not None:
        extra["data"] = fingerprint
    objective = "bpr-anchors" if cfg.anchors else "bpr"
    return f"{_id_part(dataset)}-{_id_part(cfg.model)}-{objective}-s{cfg.seed}-{cfg.hash(extra)}"


def group_columns(users: pd.DataFrame, *, max_levels: int = 10) -> list[str]:
    """The user attributes a ranking run breaks its metrics down by: text or categorical columns
    with 2 to ``max_levels`` values (gender and age band of MovieLens; its 21 occupations and the
    user token are left out; boolean membership flags too)."""
    out = []
    for c in users.columns:
        col = users[c]
        if c == "token" or pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
            continue
        if 2 <= col.nunique() <= max_levels:
            out.append(str(c))
    return out


class RankingModules(nn.Module):
    """A fit's trainable parts as one module (what ``model.pt`` holds): the domains' recommenders,
    INMO's annealed ``alpha`` per domain (a buffer, since it is not a parameter) and the anchor maps."""

    def __init__(self, fit: RankingFit):
        super().__init__()
        self.models = nn.ModuleDict({d: m for d, m in fit.models.items() if isinstance(m, nn.Module)})
        if fit.maps is not None:
            self.maps = fit.maps
        for d, m in self.models.items():
            if hasattr(m, "alpha"):
                self.register_buffer(f"alpha_{d}", torch.tensor(float(m.alpha), dtype=torch.float64))


def _fit_settings(cfg: RankingConfig) -> dict[str, Any]:
    """:func:`fit_ranking`'s keywords from a config (``ks`` belongs to the evaluation)."""
    return {k: v for k, v in cfg.to_dict().items() if k != "ks"}


def train_ranking(
    dataset: str | RecData = "synthetic-recsys",
    *,
    dataset_params: dict | None = None,
    runs_dir: str | Path | None = None,
    save: bool = True,
    resume: bool = True,
    analyses: bool = True,
    n_boot: int = 1000,
    **config: Any,
) -> Run:
    """Train a recommender (BPR; INMO, MICRec or a baseline) and record it as a run (module docstring).

    Parameters
    ----------
    dataset : str or RecData
        A name of :data:`data_catalog.recsys.REC_DATASETS` (``synthetic-recsys``, ``ml-100k``,
        ``ml-100k-genre-domains``, ``ml-1m``, ``ml-1m-genre-domains``) or interaction data.
    dataset_params : dict, optional
        Keywords of the generator or loader (e.g. ``{"n_users": 400, "overlap": 0.5}``).
    runs_dir : path, optional
        Run store root (default ``./runs`` or ``$WORKBENCH_RUNS``).
    save : bool
        Write the run folder (atomically).
    resume : bool
        Continue from the checkpoint of an interrupted run with the same settings (else it is
        moved aside, kept, and training starts again).
    analyses : bool
        Also compute and save the recommendation analysis, MICRec's modality Shapley values and
        a top-K list per domain (``results/``).
    n_boot : int
        Bootstrap replicates (and permutations) of the analysis's intervals.
    **config
        :class:`~workbench.training.config.RankingConfig` fields:

{config_fields}

    Returns
    -------
    Run

    Examples
    --------
    >>> import tempfile
    >>> run = train_ranking("synthetic-recsys", dataset_params={"n_users": 60, "n_items": 40}, model="micrec",
    ...                     epochs=1, n_layers=1, runs_dir=tempfile.mkdtemp(), progress=False, n_boot=50)
    >>> run.result_names()
    ['ranking_shapley', 'recommendation', 'top_k_A', 'top_k_B']
    """
    cfg = RankingConfig(**config)
    if not isinstance(n_boot, int) or isinstance(n_boot, bool) or n_boot < 10:
        raise ValueError(f"n_boot must be an integer >= 10, got {n_boot!r}")
    data = dataset if isinstance(dataset, RecData) else load_recdata(str(dataset), **(dataset_params or {}))
    # before the lock and the run's folder exist, so a bad setting writes nothing
    check_fit_settings(data, model=cfg.model, domains=cfg.domains, anchors=cfg.anchors, transfer=cfg.transfer)
    store = RunStore(runs_dir)
    fingerprint = recdata_fingerprint(data)
    run_id = ranking_run_id(data.name, cfg, dataset_params, fingerprint)
    if not save:
        fit = fit_ranking(data, **_fit_settings(cfg))
        return _finish(data, cfg, fit, store, run_id, dataset_params, fingerprint, analyses=analyses,
                       n_boot=n_boot, save=False)
    store.check_writable()
    with store.lock(run_id):
        folder = store.incomplete_path(run_id)
        folder.mkdir(parents=True, exist_ok=True)
        checkpoint = folder / "checkpoint.pt"
        if not resume and checkpoint.exists():
            from workbench.training.trainer import move_aside

            move_aside(checkpoint)
        fit = fit_ranking(data, checkpoint_path=checkpoint, **_fit_settings(cfg))
        return _finish(data, cfg, fit, store, run_id, dataset_params, fingerprint, analyses=analyses,
                       n_boot=n_boot, save=True)


train_ranking.__doc__ = (train_ranking.__doc__ or "").replace("{config_fields}", _fields_doc(RankingConfig))


def per_user_frame(fit: RankingFit, data: RecData, ks: list[int], groups: list[str]) -> pd.DataFrame:
    """Test metrics of every user, both settings, with ``sample``, ``split`` and ``group_<attribute>``
    for each user attribute of ``groups``."""
    frames = [evaluate_ranking(fit, data, users=u, ks=tuple(ks)) for u in ("known", "new")]
    frame = pd.concat(frames, ignore_index=True)
    for c in groups:
        frame[f"group_{c}"] = data.users[c].astype(str).to_numpy()[frame["user"].to_numpy()]
    frame.insert(0, "split", "test")
    frame.insert(0, "sample", frame["user"].to_numpy())
    return frame


#: what ``analyses=True`` runs: ``"module:function"`` taking ``(fit, data, *, model, ks, group_by, n_boot,
#: seed)`` and returning ``{name: Result}``; named, not imported, as the demo's analyses are
#: (:data:`workbench.jobs.demo.DEMO_ANALYSES`): training never depends on the analyses, which read runs
RANKING_ANALYSES = "workbench.analyses.recommendation:ranking_run_results"


def _results(fit: RankingFit, data: RecData, cfg: RankingConfig, groups: list[str], n_boot: int) -> dict[str, Any]:
    module, function = RANKING_ANALYSES.split(":")
    run_results = getattr(importlib.import_module(module), function)
    return run_results(fit, data, model=cfg.model, ks=tuple(cfg.ks), group_by=groups, n_boot=n_boot, seed=cfg.seed)


def _finish(data: RecData, cfg: RankingConfig, fit: RankingFit, store: RunStore, run_id: str,
            dataset_params: dict | None, fingerprint: str, *, analyses: bool, n_boot: int, save: bool) -> Run:
    groups = group_columns(data.users)
    predictions = per_user_frame(fit, data, cfg.ks, groups)
    from workbench.tasks.ranking import RankingTask

    modalities = sorted({m for d in fit.models for m in data.domains[d].item_features})
    shapes = {m: [int(np.asarray(data.domains[d].item_features[m]).shape[1])]
              for d in fit.models for m in data.domains[d].item_features}
    results = _results(fit, data, cfg, groups, n_boot) if analyses else {}
    for m in fit.models.values():
        if isinstance(m, nn.Module):
            m.to_device("cpu")
    if fit.maps is not None:
        fit.maps.cpu()
    modules = RankingModules(fit)
    run = Run(
        run_id=run_id,
        config={
            "dataset": data.name, "dataset_params": dataset_params or {},
            "train": {**cfg.to_dict(), "task": "ranking", "task_params": {}, "fusion": cfg.model,
                      "strategy": "bpr+anchors" if cfg.anchors else "bpr"},
            "modalities": modalities, "shapes": shapes, "kinds": dict.fromkeys(modalities, "item"), "classes": [],
            "groups": groups, "domains": data.summary().to_dict("records"),
            "split": {d: {p: int(len(getattr(data.domains[d], p))) for p in ("train", "valid", "test", "fold_in")}
                      for d in fit.models},
            "epochs_run": int(len(fit.history)), "best_epoch": fit.params.get("best_epoch"),
            "version": RUN_FORMAT_VERSION, "created": _dt.datetime.now().isoformat(timespec="seconds"),
            "torch": torch.__version__, "data_fingerprint": fingerprint,
        },
        history=fit.history if not fit.history.empty else pd.DataFrame({"epoch": pd.Series([], dtype=int)}),
        predictions=predictions,
        metrics=RankingTask().metrics(predictions, modalities),
        model=modules if list(modules.state_dict()) else None,
        extras={"fit": fit, "data": data},
    )
    if save:
        tmp = store.incomplete_path(run_id)
        shutil.rmtree(tmp / "results", ignore_errors=True)  # an interrupted attempt's, not this run's
        for name, result in results.items():
            result.save(tmp / "results" / name)  # moved into place with the run, never half-written
        store.write(run)
    return run


def load_ranking_data(run: Run) -> RecData:
    """A ranking run's interaction data, loaded again by its dataset name and parameters."""
    return load_recdata(run.config["dataset"], **(run.config.get("dataset_params") or {}))


def load_ranking_fit(run: Run, data: RecData | None = None) -> RankingFit:
    """Rebuild a saved ranking run's fit (``model.pt``, ``weights_only=True``) on its data.

    ``data`` defaults to the run's dataset loaded again by name with its parameters; data whose
    fingerprint differs from the run's are refused (a one-line :class:`RunError`).
    """
    train_cfg = dict(run.config.get("train") or {})
    if train_cfg.get("task") != "ranking":
        raise RunError(f"run {run.run_id!r} is not a ranking run (task {train_cfg.get('task', 'classification')!r})")
    if "fit" in run.extras:
        return run.extras["fit"]
    cfg = RankingConfig(**{k: v for k, v in train_cfg.items() if k in config_fields(RankingConfig)})
    data = load_ranking_data(run) if data is None else data
    if recdata_fingerprint(data) != run.config.get("data_fingerprint"):
        raise RunError(f"run {run.run_id!r} was trained on other data than {data.name!r} (fingerprints differ)")
    fit = fit_ranking(data, **{**_fit_settings(cfg), "epochs": 0, "progress": False, "device": "cpu"})
    if fit.kind == "popularity":
        return fit
    modules = RankingModules(fit)
    run.load_weights(modules)
    for d, m in modules.models.items():
        if hasattr(m, "alpha"):
            m.alpha = float(getattr(modules, f"alpha_{d}"))
            m.update_feat()
        m.eval()
    return fit
