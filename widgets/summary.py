"""Plain, UI-toolkit-free pieces shared by the JupyterLab panels and the served dashboard.

A run's one-line summary (as escaped HTML), its splits and epoch range, and its saved results
loaded without letting one bad result folder stop the others.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from widgets.registry import load_extensions
from widgets.text import escape
from workbench.store.results import Result, load_result
from workbench.store.runs import Run

SPLIT_ORDER = ("test", "calib", "train")


def run_summary_html(run: Run) -> str:
    """The run's dataset, fusion, strategy, seed, epochs and modalities as escaped HTML.

    Examples
    --------
    >>> from workbench.store.runs import Run
    >>> import pandas as pd
    >>> cfg = {"dataset": "d<x>", "train": {"fusion": "late", "strategy": "naive", "seed": 0},
    ...        "epochs_run": 2, "modalities": ["a", "b"], "created": "now"}
    >>> "d&lt;x&gt;" in run_summary_html(Run("r", cfg, pd.DataFrame(), pd.DataFrame(), {}))
    True
    """
    cfg = run.config
    train = cfg.get("train", {})
    items = [("run", run.run_id), ("dataset", cfg.get("dataset")), ("fusion", train.get("fusion")),
             ("strategy", train.get("strategy")), ("seed", train.get("seed")), ("epochs", cfg.get("epochs_run")),
             ("modalities", ", ".join(map(str, cfg.get("modalities", [])))), ("created", cfg.get("created"))]
    return " &middot; ".join(f"<b>{escape(k)}</b> {escape(v)}" for k, v in items)


def run_splits(run: Run) -> list[str]:
    """Splits present in the run's predictions, test first."""
    present = set(run.predictions["split"].unique()) if "split" in run.predictions else set()
    return [s for s in SPLIT_ORDER if s in present] + sorted(present - set(SPLIT_ORDER))


def epoch_bounds(run: Run) -> tuple[int, int]:
    """First and last epoch recorded in the run's history (``(0, 0)`` when empty)."""
    epochs = run.history["epoch"] if "epoch" in run.history else []
    return (int(min(epochs)), int(max(epochs))) if len(epochs) else (0, 0)


def load_run_results(run: Run, accept: Callable[[Path], bool] | None = None) -> dict[str, Result | str]:
    """Each saved result of ``run`` by name, or a one-line error message where it cannot be loaded.

    ``accept(folder)`` may refuse a result folder (e.g. one that resolves outside the runs folder).
    Extension modules (:func:`widgets.registry.load_extensions`) are imported first, so their
    results load.
    """
    load_extensions()
    out: dict[str, Result | str] = {}
    for name in run.result_names():
        folder = run.path / "results" / name
        if accept is not None and not accept(folder):
            out[name] = f"result {name!r} refused: {folder} resolves outside the runs folder"
            continue
        try:
            out[name] = load_result(folder)
        except (OSError, ValueError, TypeError, KeyError, ImportError) as exc:
            out[name] = f"result {name!r} cannot be loaded: {exc}"
    return out
