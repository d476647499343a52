"""The :func:`train` entry point: validate a :class:`~workbench.training.config.TrainConfig`,
train, and record the run in the run store (:mod:`workbench.store.runs`).

Example
-------
>>> import tempfile
>>> from workbench import train
>>> run = train("synthetic-imbalance", epochs=2, runs_dir=tempfile.mkdtemp(),
...             dataset_params={"n": 300}, progress=False)
>>> run.metrics["test"]["fused"] > 0.5
True
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

import torch

from workbench.data import MultimodalDataset, Splits
from workbench.store.runs import RUN_FORMAT_VERSION, Run, RunStore, dataset_fingerprint
from workbench.training.config import TrainConfig, config_fields
from workbench.training.trainer import Trainer, describe_strategy

__all__ = ["run_id_for", "train"]


def encoder_names(encoders: dict | None) -> dict[str, str]:
    """``modality -> "module:Class"`` of user encoders (what identifies them in a run)."""
    return {m: f"{type(e).__module__}:{type(e).__qualname__}" for m, e in sorted((encoders or {}).items())}


def run_id_for(dataset_name: str, config: TrainConfig, dataset_params: dict | None = None,
               fingerprint: str | None = None, encoders: dict[str, str] | None = None) -> str:
    """``DATASET-FUSION-STRATEGY-sSEED-HASH``; the hash covers the config's
    :func:`~workbench.training.config.config_key`, the dataset's name and parameters and, when
    given, the :func:`~workbench.store.runs.dataset_fingerprint` of its contents.

    Examples
    --------
    >>> run_id_for("mfeat", TrainConfig(seed=3)).startswith("mfeat-concat-naive-s3-")
    True
    >>> run_id_for("../x", TrainConfig(strategy="<img src=x>")).split("-s0-")[0]
    '---x-concat--img-src-x-'
    """
    extra: dict[str, Any] = {"dataset": dataset_name, "dataset_params": dataset_params or {}}
    if fingerprint is not None:
        extra["data"] = fingerprint
    if encoders:
        extra["encoders"] = encoders
    h = config.hash(extra)
    # every readable part is reduced to [A-Za-z0-9_-]: a user-registered strategy or fusion name
    # (or a hostile one from a sweep) never becomes a path separator, a dot-name or markup
    parts = [_id_part(str(v)) for v in (dataset_name, config.fusion, config.strategy)]
    return f"{'-'.join(parts)}-s{config.seed}-{h}"


def _id_part(text: str) -> str:
    """``text`` with every character outside ``[A-Za-z0-9_-]`` replaced by ``-`` (ASCII only)."""
    return "".join(c if (c.isascii() and c.isalnum()) or c in "-_" else "-" for c in text) or "-"


def train(
    dataset: str | MultimodalDataset = "mfeat",
    *,
    dataset_params: dict | None = None,
    split: dict | None = None,
    runs_dir: str | Path | None = None,
    save: bool = True,
    resume: bool = True,
    callbacks: list | None = None,
    encoders: dict | None = None,
    **config: Any,
) -> Run:
    """Train a multimodal model for a task (``task=``, default classification) and record it in the run store.

    Every training keyword is a :class:`~workbench.training.config.TrainConfig` field, checked
    (a one-line ``ValueError`` naming it) before the data are loaded.

    Parameters
    ----------
    dataset : str or MultimodalDataset
        A catalog name (see ``workbench datasets``), a data folder path, or a dataset.
    dataset_params : dict, optional
        Keyword parameters of a synthetic dataset's generator.
    split : dict, optional
        ``train``/``calib``/``test`` fractions (default 0.6/0.2/0.2), seeded by ``seed``, and ``by``: a
        group column kept whole across splits (default :func:`default_split_by`: ``"night"`` for sleep
        sequences, else a split stratified by label).
    runs_dir : path, optional
        Run store root (default ``./runs`` or ``$WORKBENCH_RUNS``).
    save : bool
        Write the run folder (atomically).
    resume : bool
        Continue from the checkpoint of an interrupted run with the same config.
    callbacks : list, optional
        Epoch-end callbacks passed to the :class:`~workbench.training.trainer.Trainer` (e.g. a ``GapTracker``).
    encoders : dict, optional
        ``modality -> nn.Module`` encoders of your own, used instead of the built-in ones (see
        :func:`~workbench.models.multimodal.build_model`). Their classes are part of the run id and
        are recorded in ``config.json``; pass the same modules to ``Run.load_model(encoders=...)``.
    **config
        :class:`~workbench.training.config.TrainConfig` fields:

{config_fields}

    Returns
    -------
    Run

    Examples
    --------
    >>> import tempfile
    >>> run = train("synthetic-xor", fusion="concat", epochs=3, dataset_params={"n": 400},
    ...             runs_dir=tempfile.mkdtemp(), progress=False)
    >>> sorted(run.metrics)
    ['calib', 'test', 'train']
    """
    from workbench import load_dataset

    if config.get("task") == "ranking":
        return _train_ranking(dataset, dataset_params=dataset_params, split=split, runs_dir=runs_dir, save=save,
                              resume=resume, callbacks=callbacks, encoders=encoders, **config)
    if config.get("strategy_params") is None:
        config.pop("strategy_params", None)
    cfg = TrainConfig(**config)
    ds = dataset if isinstance(dataset, MultimodalDataset) else load_dataset(dataset, **(dataset_params or {}))
    splits = ds.split(seed=cfg.seed, **{"by": default_split_by(ds), **(split or {})})
    store = RunStore(runs_dir)
    fingerprint = dataset_fingerprint(ds)
    custom = encoder_names(encoders)
    run_id = run_id_for(ds.name, cfg, dataset_params, fingerprint=fingerprint, encoders=custom)
    trainer = Trainer(cfg, callbacks=callbacks, encoders=encoders)
    if not save:
        trainer.fit(ds, splits)
        return _finish(ds, cfg, splits, store, run_id, trainer, dataset_params, fingerprint, save=False)
    store.check_writable()
    with store.lock(run_id):
        checkpoint = store.incomplete_path(run_id) / "checkpoint.pt"
        trainer.fit(ds, splits, checkpoint_path=checkpoint, resume=resume)
        return _finish(ds, cfg, splits, store, run_id, trainer, dataset_params, fingerprint, save=True)


def _train_ranking(dataset, *, split, callbacks, encoders, **config: Any) -> Run:
    """``train(..., task="ranking")``: :func:`~workbench.training.train_ranking.train_ranking` with the
    task's parameters (``task_params``) and the other keywords as its settings."""
    from workbench.training.train_ranking import train_ranking

    given = [name for name, v in (("split", split), ("callbacks", callbacks), ("encoders", encoders)) if v]
    if given:
        raise ValueError(f"task 'ranking' takes no {given[0]!r}: its splits are per user in time order "
                         "(see workbench.training.train_ranking)")
    config.pop("task")
    settings = {**(config.pop("task_params", None) or {}), **config}
    return train_ranking(dataset, **settings)


def default_split_by(ds: MultimodalDataset) -> str | None:
    """The group column :func:`train` keeps whole across splits by default: ``"night"`` for sequence
    labels (sleep staging: the sequences of a night are correlated, so a random split leaks between
    training and test), else none (``split={"by": None}`` overrides, ``split={"by": "patient"}`` chooses)."""
    if ds.y.dim() == 2 and ds.groups is not None and "night" in ds.groups.columns:
        return "night"
    return None


def _fields_doc(config_cls: type = TrainConfig, indent: str = "        ") -> str:
    """``name : type, default X`` and the description of every field, for :func:`train`'s docstring."""
    lines = []
    for name, info in config_fields(config_cls).items():
        default = info.get_default(call_default_factory=True)
        lines.append(f"{indent}- ``{name}`` (default ``{default!r}``): {info.description}")
    return "\n".join(lines)


train.__doc__ = (train.__doc__ or "").replace("{config_fields}", _fields_doc())


def _finish(ds: MultimodalDataset, cfg: TrainConfig, splits: Splits, store: RunStore, run_id: str, trainer: Trainer,
            dataset_params: dict | None, fingerprint: str, *, save: bool) -> Run:
    """Predictions, metrics and the config of a trained run; written to the store when ``save``."""
    model = trainer.model_
    predictions = trainer.task_.predict_frame(model, ds, split_labels=splits.labels(ds.n_samples))
    predictions = predictions[predictions["split"] != ""].reset_index(drop=True)
    run = Run(
        run_id=run_id,
        config={
            "dataset": ds.name, "dataset_params": dataset_params or {}, "train": cfg.to_dict(),
            "strategy": describe_strategy(trainer),
            "modalities": ds.modality_names, "shapes": {m: list(s) for m, s in ds.shapes.items()},
            "kinds": ds.kinds, "classes": ds.classes,
            "groups": [] if ds.groups is None else list(ds.groups.columns),
            "split": {k: int(len(v)) for k, v in splits.as_dict().items()},
            "epochs_run": trainer.stopped_epoch_, "version": RUN_FORMAT_VERSION,
            "created": _dt.datetime.now().isoformat(timespec="seconds"),
            "torch": torch.__version__, "data_fingerprint": fingerprint,
            "encoders": encoder_names(trainer.encoders),
        },
        history=trainer.history,
        predictions=predictions,
        metrics=trainer.task_.metrics(predictions, ds.modality_names),
        model=model.cpu(),
        dataset=ds,
        splits=splits,
        # what a caller may want from the trainer, not the trainer itself: it holds the
        # device-resident training tensors, which a Run would otherwise keep alive
        extras={"strategy": trainer.strategy_, "checkpoint_problem": trainer.checkpoint_problem_},
    )
    if save:
        store.write(run)
    return run
