"""The Trainer: seeded, device-aware training of a :class:`MultimodalModel` with a strategy hook.

- Device ``auto``: CUDA when present, else CPU. Data are moved to the device once and
  batches are gathered there by index (no DataLoader, no host round trip per step).
- AMP (bfloat16 autocast) on CUDA when ``amp=True``; losses are computed in float32.
- Seeded: the same config and seed give the same numbers on CPU.
- Early stopping on the loss of a validation slice carved from the training split when
  ``patience`` is set (the calibration split is never used for decisions, so conformal
  analyses keep their exchangeability); the best weights are restored.
- Checkpoints every epoch when ``checkpoint_path`` is given: model, optimizer, history, every
  RNG (torch, CUDA, numpy, Python, the batch-order generator), the early-stopping state (best
  loss, best weights, the epoch of the best, whether it has stopped) and the strategy's
  :meth:`~workbench.strategies.base.Strategy.state_dict`; ``resume=True`` continues from it, loaded with
  ``torch.load(weights_only=True)``, so a resumed run gives the numbers of an uninterrupted one.
  A checkpoint that cannot be used (truncated, pickled objects, another model's, an older
  format) is moved aside as ``checkpoint.bad-N`` with a warning naming it, and training restarts.
- Per-epoch history as a DataFrame: training loss/accuracy, held-out loss/accuracy and
  held-out accuracy of every unimodal head (every ``eval_every`` epochs; 0 turns it off).

Example
-------
>>> from workbench import load_dataset
>>> from workbench.training.trainer import Trainer, TrainConfig
>>> ds = load_dataset("synthetic-imbalance", n=300)
>>> splits = ds.split(seed=0)
>>> trainer = Trainer(TrainConfig(epochs=2, progress=False)).fit(ds, splits)
>>> list(trainer.history.columns[:3])
['epoch', 'train_loss', 'train_acc']
"""

from __future__ import annotations

import copy
import pickle
import random
import re
import time
import warnings
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from workbench.corruptions import check_specs, corrupt_batch
from workbench.data import MultimodalDataset, Splits, stratified_split
from workbench.models.multimodal import MultimodalModel
from workbench.progress import progress_bar
from workbench.store.atomic import atomic_torch_save
from workbench.strategies.base import (
    Batch,
    Strategy,
    TrainContext,
    check_plain_state,
    make_strategy,
)
from workbench.tasks import Task, make_task
from workbench.tasks.classification import predict_frame, predict_proba  # noqa: F401 -- public names
from workbench.training.config import TrainConfig
from workbench.training.optim import apply_schedule, make_optimizer
from workbench.training.steps import EagerStep, GraphStep, choose_step_mode

CHECKPOINT_FORMAT = 2  # 2: early-stopping and strategy state, every RNG, rows as a list of dicts


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be resumed from (the message names the file and why)."""


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _fits_on_device(tensors: list[torch.Tensor], device: torch.device) -> bool:
    if device.type != "cuda":
        return True
    need = sum(t.numel() * t.element_size() for t in tensors)
    free, _ = torch.cuda.mem_get_info(device)
    return need < 0.5 * free


def group_codes(groups: pd.DataFrame | None) -> dict[str, torch.Tensor] | None:
    """Integer codes per group attribute (sorted category order)."""
    if groups is None or groups.empty:
        return None
    return {c: torch.as_tensor(pd.Categorical(groups[c].astype(str)).codes.astype(np.int64)) for c in groups.columns}


def settle_step_mode(mode: str, reason: str, optimizer: torch.optim.Optimizer) -> tuple[str, str]:
    """The step mode once the strategy's ``setup`` has run.

    :func:`choose_step_mode` decides before ``setup`` (the capturable optimizer must be built
    first), but ``setup`` may replace the optimizer (e.g. with per-encoder parameter groups): a
    graph step then needs the replacement to be capturable too, else the step runs eagerly.
    """
    if mode == "graph" and not optimizer.defaults.get("capturable", False):
        return "eager", (f"the strategy's setup installed a non-capturable {type(optimizer).__name__} "
                         "optimizer (no CUDA graph)")
    return mode, reason


class Trainer:
    """Train a multimodal model with a pluggable strategy.

    Parameters
    ----------
    config : TrainConfig
    strategy : Strategy, optional
        Overrides ``config.strategy``/``config.strategy_params``.
    encoders : dict of str to nn.Module, optional
        Encoders brought by the user for some modalities (see
        :class:`~workbench.models.multimodal.MultimodalModel`); every :meth:`fit` trains a copy,
        so refitting starts again from the modules as given.

    Attributes (after :meth:`fit`)
    ------------------------------
    model_ : MultimodalModel
    history : DataFrame, one row per epoch
    device_ : torch.device
    strategy_ : Strategy
    callbacks : list
        Objects with ``on_epoch_end(ctx, epoch, row)`` (e.g. :class:`workbench.analyses.gap.GapTracker`),
        called after the strategy's hook at the end of every epoch.
    """

    def __init__(self, config: TrainConfig | None = None, *, strategy: Strategy | None = None,
                 callbacks: list | None = None, encoders: dict[str, torch.nn.Module] | None = None):
        self.config = config or TrainConfig()
        self.encoders = dict(encoders or {})
        # objects with ``on_epoch_end(ctx, epoch, row)``, called once per epoch after the strategy's
        self.callbacks = list(callbacks or [])
        self._strategy_from_config = strategy is None  # a bad checkpoint restarts with a fresh one
        self.strategy_ = strategy or make_strategy(self.config.strategy, **self.config.strategy_params)
        self.task_: Task = make_task(self.config.task, **self.config.task_params)
        check_task(self.strategy_, self.task_)
        self.checkpoint_problem_: str | None = None
        self.history = pd.DataFrame()
        self.model_: MultimodalModel | None = None

    # -- data -------------------------------------------------------------------------
    def _resident(self, ds: MultimodalDataset, idx: np.ndarray, device: torch.device):
        idx_t = torch.as_tensor(idx, dtype=torch.long)
        x = {m: t[idx_t] for m, t in ds.modalities.items()}
        y = ds.y[idx_t]
        mask = None if ds.mask is None else {m: v[idx_t] for m, v in ds.mask.items()}
        groups = group_codes(ds.groups.iloc[idx] if ds.groups is not None else None)
        tensors = list(x.values()) + [y]
        target = device if _fits_on_device(tensors, device) else torch.device("cpu")
        move = lambda d: None if d is None else {k: v.to(target) for k, v in d.items()}  # noqa: E731
        return move(x), y.to(target), move(mask), move(groups)

    def _split_validation(self, ds: MultimodalDataset, train_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.config.patience is None or self.config.val_fraction <= 0:
            return train_idx, np.array([], dtype=int)
        tr, va = stratified_split(train_idx, ds.y.numpy()[train_idx], test_size=self.config.val_fraction,
                                  seed=self.config.seed + 7)
        return np.sort(tr), np.sort(va)

    # -- training ---------------------------------------------------------------------
    def fit(
        self, ds: MultimodalDataset, splits: Splits, *, checkpoint_path: str | Path | None = None,
        resume: bool = False,
    ) -> Trainer:
        """Train on ``splits.train``; track held-out metrics on ``splits.calib`` each epoch."""
        cfg = self.config
        task = self.task_
        task.check_dataset(ds)
        corruptions = check_specs(cfg.augment, ds)  # modalities and kinds checked before any work
        seed_everything(cfg.seed)
        device = resolve_device(cfg.device)
        self.device_ = device
        train_idx, val_idx = self._split_validation(ds, splits.train)
        monitor_idx = val_idx if len(val_idx) else splits.calib
        x, y, mask, groups = self._resident(ds, train_idx, device)
        mx, my, mmask, _ = self._resident(ds, monitor_idx, device) if len(monitor_idx) else (None,) * 4
        model = task.build_model(shapes=ds.shapes, kinds=ds.kinds, n_classes=ds.n_classes, config=cfg.to_dict(),
                                 encoders=copy.deepcopy(self.encoders))
        if hasattr(model, "set_standardization"):  # training-set statistics as buffers (see Task.forward)
            model.set_standardization({m: t.cpu() for m, t in x.items()})
        model.to(device)
        strategy = self.strategy_
        self.step_mode_, self.step_mode_reason_ = choose_step_mode(device, strategy, cfg.fast_path)
        if self.step_mode_ == "graph" and cfg.optimizer == "sgd":
            self.step_mode_, self.step_mode_reason_ = "eager", "torch's SGD has no capturable implementation (no CUDA graph)"
        if self.step_mode_ == "graph" and cfg.augment:
            self.step_mode_, self.step_mode_reason_ = "eager", "augmentation corrupts each batch on the host"
        if self.step_mode_ == "graph" and cfg.schedule != "constant":
            # a captured step keeps the learning rate it was captured with
            self.step_mode_, self.step_mode_reason_ = "eager", f"the {cfg.schedule} schedule changes the rate per epoch"
        graph = self.step_mode_ == "graph"
        optimizer = make_optimizer(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, kind=cfg.optimizer,
                                   momentum=cfg.momentum, capturable=graph)
        ctx = TrainContext(model, optimizer, x, y, mask, groups, device, cfg, task=task)
        self.model_, self.ctx_ = model, ctx
        strategy.setup(ctx)
        optimizer = ctx.optimizer  # a strategy's setup may replace it (e.g. per-encoder parameter groups)
        self.step_mode_, self.step_mode_reason_ = settle_step_mode(self.step_mode_, self.step_mode_reason_, optimizer)
        graph = self.step_mode_ == "graph"
        generator = torch.Generator().manual_seed(cfg.seed)
        rows: list[dict] = []
        start = 0
        best = (float("inf"), None, 0)  # early stopping: best held-out loss, its weights (CPU), its epoch
        stopped = False
        if resume and checkpoint_path and Path(checkpoint_path).exists():
            try:
                start, rows, best, stopped = self._load_checkpoint(checkpoint_path, model, optimizer, generator,
                                                                   strategy)
            except CheckpointError as exc:
                return self._restart_after_bad_checkpoint(ds, splits, Path(checkpoint_path), exc)
        amp = cfg.amp and device.type == "cuda"
        autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if amp else nullcontext
        n = len(y)

        batch_counter = [0]

        def make_batch(bi: torch.Tensor) -> Batch:
            bx = {m: t[bi] for m, t in x.items()}
            bmask = None if mask is None else {m: v[bi] for m, v in mask.items()}
            if corruptions:
                # a generator per (seed, epoch, batch): a resumed run corrupts its batches identically
                rng = np.random.default_rng([cfg.seed, ctx.epoch, batch_counter[0]])
                batch_counter[0] += 1
                bx, bmask = corrupt_batch(bx, bmask, corruptions, rng)
            batch = Batch(bx, y[bi], bi, bmask, None if groups is None else {g: v[bi] for g, v in groups.items()})
            return strategy.prepare_batch(ctx, batch)

        step = (GraphStep(ctx, strategy, make_batch, autocast, batch_size=cfg.batch_size) if graph
                else EagerStep(ctx, strategy, make_batch, autocast))
        epochs = progress_bar(range(start, cfg.epochs if not stopped else start), enabled=cfg.progress,
                              desc=f"train {ds.name}")
        for epoch in epochs:
            t0 = time.perf_counter()
            ctx.epoch = epoch
            batch_counter[0] = 0
            apply_schedule(optimizer, epoch, epochs=cfg.epochs, lr=cfg.lr, lr_min=cfg.lr_min, schedule=cfg.schedule)
            strategy.on_epoch_start(ctx, epoch)
            model.train()
            perm = torch.randperm(n, generator=generator).to(y.device)
            loss_sum = torch.zeros((), device=y.device)
            statistic = torch.zeros((), device=y.device)
            for s in range(0, n, cfg.batch_size):
                bi = perm[s : s + cfg.batch_size]
                loss, batch_statistic = step(bi)
                loss_sum += loss * len(bi)
                statistic += batch_statistic
            row = {"epoch": epoch + 1, "train_loss": float(loss_sum) / n,
                   f"train_{task.train_metric}": float(statistic) / n}
            if mx is not None and cfg.eval_every and ((epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs):
                with autocast():
                    row.update(task.evaluate(model, mx, my, mmask))
            row["seconds"] = time.perf_counter() - t0
            strategy.on_epoch_end(ctx, epoch, row)
            for callback in self.callbacks:
                callback.on_epoch_end(ctx, epoch, row)
            if not np.isfinite(row["train_loss"]):
                raise FloatingPointError(f"training loss is not finite at epoch {epoch + 1} ({row['train_loss']})")
            rows.append(row)
            if cfg.patience is not None and "heldout_loss" in row:
                if row["heldout_loss"] < best[0] - 1e-6:
                    best = (row["heldout_loss"], {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
                            epoch)
                elif epoch - best[2] >= cfg.patience:
                    stopped = True
            # saved after the early-stopping update, so a kill right after it resumes the same decision
            if checkpoint_path:
                self._save_checkpoint(checkpoint_path, epoch + 1, model, optimizer, generator, rows,
                                      strategy=strategy, best=best, stopped=stopped)
            if stopped:
                break
        if best[1] is not None:
            model.load_state_dict(best[1])
        self.history = pd.DataFrame(rows)
        self.stopped_epoch_ = len(rows)
        model.eval()
        return self

    # -- checkpoints --------------------------------------------------------------------
    @staticmethod
    def _save_checkpoint(path, epoch, model, optimizer, generator, rows, *, strategy: Strategy | None = None,
                         best: tuple = (float("inf"), None, 0), stopped: bool = False) -> None:
        """Everything a resumed run needs to continue exactly, written atomically
        (:func:`workbench.store.atomic.atomic_torch_save`: unique temp name, no partial file on errors)."""
        state = {
            "format": CHECKPOINT_FORMAT, "epoch": epoch, "model": model.state_dict(),
            "optimizer": optimizer.state_dict(), "generator": generator.get_state(), "rng": _rng_state(),
            "rows": [{k: _plain_value(v) for k, v in r.items()} for r in rows],
            "early_stop": {"best_loss": float(best[0]), "best_state": best[1], "best_epoch": int(best[2]),
                           "stopped": bool(stopped)},
            "strategy_name": strategy.name if strategy is not None else "",
            "strategy": strategy.state_dict() if strategy is not None else {},
        }
        check_plain_state(state["strategy"], f"strategy {state['strategy_name']!r} state_dict()")
        check_plain_state(state["rows"], "history row")
        atomic_torch_save(path, state)

    @staticmethod
    def _read_checkpoint(path: Path, model: MultimodalModel, strategy: Strategy | None) -> dict:
        """Load and check a checkpoint without touching the model: CheckpointError names the file."""
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, TypeError, AttributeError,
                ImportError, KeyError, OSError) as exc:  # a truncated zip is OSError(EINVAL) in torch.load
            # torch's message runs to a page with terminal escapes: keep its first sentence only
            text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
            first = text.splitlines()[0].split(". ")[0] if text else type(exc).__name__
            raise CheckpointError(f"checkpoint {path} is unreadable (truncated, or not a weights-only torch "
                                  f"file): {first}") from None
        need = {"format", "epoch", "model", "optimizer", "generator", "rng", "rows", "early_stop", "strategy"}
        if not isinstance(state, dict) or not need <= set(state):
            have = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise CheckpointError(f"checkpoint {path} is not a workbench checkpoint of format {CHECKPOINT_FORMAT} "
                                  f"(it holds {have})")
        if state["format"] != CHECKPOINT_FORMAT:
            raise CheckpointError(f"checkpoint {path} has format {state['format']}, this workbench resumes "
                                  f"format {CHECKPOINT_FORMAT}")
        ours = model.state_dict()
        theirs = state["model"]
        if not isinstance(theirs, dict) or set(theirs) != set(ours):
            extra = sorted(set(theirs) - set(ours)) if isinstance(theirs, dict) else []
            missing = sorted(set(ours) - set(theirs)) if isinstance(theirs, dict) else sorted(ours)
            raise CheckpointError(f"checkpoint {path} was written for another model (missing {missing[:3]}, "
                                  f"unexpected {extra[:3]})")
        for k, v in ours.items():
            if not isinstance(theirs[k], torch.Tensor) or theirs[k].shape != v.shape:
                shape = tuple(theirs[k].shape) if isinstance(theirs[k], torch.Tensor) else type(theirs[k]).__name__
                raise CheckpointError(f"checkpoint {path} was written for another model ({k}: {shape} in the file, "
                                      f"{tuple(v.shape)} here)")
        name = strategy.name if strategy is not None else ""
        if state.get("strategy_name", "") != name:
            raise CheckpointError(f"checkpoint {path} was written by strategy {state.get('strategy_name')!r}, "
                                  f"not {name!r}")
        return state

    @classmethod
    def _load_checkpoint(cls, path, model, optimizer, generator, strategy: Strategy | None = None,
                         ) -> tuple[int, list[dict], tuple, bool]:
        """Restore a checkpoint into model, optimizer, RNGs and strategy;
        returns ``(epoch, rows, best, stopped)``."""
        path = Path(path)
        state = cls._read_checkpoint(path, model, strategy)
        try:
            model.load_state_dict(state["model"])
            # load_state_dict replaces the param-group dicts; keep the live ones, which strategies may
            # hold (OGM-GE steers its encoders' learning rates through them)
            live = optimizer.param_groups
            optimizer.load_state_dict(state["optimizer"])
            for old, new in zip(live, optimizer.param_groups, strict=True):
                old.update(new)
            optimizer.param_groups = live
            generator.set_state(state["generator"])
            _set_rng_state(state["rng"])
            if strategy is not None:
                strategy.load_state_dict(state["strategy"])
            es = state["early_stop"]
            best = (float(es["best_loss"]), es["best_state"], int(es["best_epoch"]))
            return int(state["epoch"]), [dict(r) for r in state["rows"]], best, bool(es["stopped"])
        except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as exc:
            raise CheckpointError(f"checkpoint {path} does not fit this run ({type(exc).__name__}: {exc})") from None

    def _restart_after_bad_checkpoint(self, ds: MultimodalDataset, splits: Splits, path: Path,
                                      exc: CheckpointError) -> Trainer:
        """Keep the bad file as ``checkpoint.bad-N`` (nothing on disk is lost), warn, train from scratch."""
        aside = move_aside(path)
        self.checkpoint_problem_ = f"{exc}; moved it to {aside.name} and restarted from epoch 0"
        warnings.warn(self.checkpoint_problem_, RuntimeWarning, stacklevel=3)
        if self._strategy_from_config:  # a half-restored strategy must not leak into the fresh run
            self.strategy_ = make_strategy(self.config.strategy, **self.config.strategy_params)
        problem = self.checkpoint_problem_
        self.fit(ds, splits, checkpoint_path=path, resume=False)
        self.checkpoint_problem_ = problem
        return self

    # -- prediction -------------------------------------------------------------------
    def predict(self, ds: MultimodalDataset, idx: np.ndarray | None = None,
                mask: dict[str, torch.Tensor] | None = None) -> pd.DataFrame:
        """Per-sample predictions of the task (classification: :func:`predict_frame`)."""
        if self.model_ is None:
            raise RuntimeError("call fit() before predict()")
        return self.task_.predict_frame(self.model_, ds, idx, mask=mask)


def check_task(strategy: Strategy, task: Task) -> None:
    """A one-line ``ValueError`` when ``strategy`` was not written for ``task`` (before any training)."""
    if strategy.tasks is not None and task.name not in strategy.tasks:
        raise ValueError(f"strategy {strategy.name!r} supports the task(s) {list(strategy.tasks)}, "
                         f"not {task.name!r}")


def move_aside(path: str | Path) -> Path:
    """Rename ``DIR/NAME.EXT`` to the first free ``DIR/NAME.bad-N`` and return the new path."""
    path = Path(path)
    n = 1
    while (aside := path.with_name(f"{path.stem}.bad-{n}")).exists():
        n += 1
    path.replace(aside)
    return aside


def _plain_value(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _rng_state() -> dict:
    """Every global RNG a strategy or the model may draw from, as tensors and plain values."""
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    state = {"torch": torch.get_rng_state(),
             "numpy": {"name": np_name, "keys": torch.from_numpy(np_keys.astype(np.int64)), "pos": int(np_pos),
                       "has_gauss": int(np_has_gauss), "gauss": float(np_gauss)},
             "python": {"version": py_version, "internal": list(py_internal), "gauss": py_gauss}}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    npst = state["numpy"]
    np.random.set_state((npst["name"], npst["keys"].numpy().astype(np.uint32), npst["pos"], npst["has_gauss"],
                         npst["gauss"]))
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def describe_strategy(trainer: Trainer) -> dict[str, Any]:
    """What the run's config records about the strategy and how the step ran (eager or graph, and why)."""
    strategy = trainer.strategy_
    return {"name": strategy.name, "params": strategy.params(), "graph_safe": strategy.graph_safe,
            "task": trainer.task_.name,
            "step_mode": trainer.step_mode_, "step_mode_reason": trainer.step_mode_reason_,
            "device": str(trainer.device_)}
