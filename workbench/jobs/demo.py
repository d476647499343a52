"""``workbench demo``: train on the default dataset, run every analysis that exists, write a report.

Each analysis module adds a ``"module:function"`` entry to :data:`DEMO_ANALYSES`; the function
takes the trained :class:`~workbench.store.runs.Run` and returns ``(name, result)``, and the demo
saves the result into the run's ``results/NAME`` folder. The HTML report is the
``run_report`` notebook template executed by papermill over the run folder.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path

from workbench.store.runs import Run
from workbench.training.train import train

DEFAULT_DATASET = "mfeat"

# "module:function" taking a Run and returning (name, Result); run in order, after training
DEMO_ANALYSES: list[str] = []
DEMO_ANALYSES.append("workbench.analyses.gap:demo_analysis")
DEMO_ANALYSES.append("workbench.analyses.shapley:demo_analysis")


def run_analyses(run: Run, analyses: list[str] | None = None) -> dict[str, object]:
    """Run each registered demo analysis on ``run`` and save its result into the run."""
    results = {}
    for target in DEMO_ANALYSES if analyses is None else analyses:
        module, fn = target.split(":")
        t0 = time.perf_counter()
        name, result = getattr(importlib.import_module(module), fn)(run)
        run.save_result(name, result)
        results[name] = result
        print(f"  analysis {name}: {time.perf_counter() - t0:.1f}s")
    return results


def run_demo(*, runs_dir: str | Path | None = None, epochs: int = 30, report: bool = True) -> Run:
    """Train a concat-fusion model on UCI mfeat, run the analyses, render the HTML report."""
    t0 = time.perf_counter()
    print(f"workbench demo: training on {DEFAULT_DATASET} (6 views, 2000 digits), {epochs} epochs")
    run = train(DEFAULT_DATASET, fusion="concat", epochs=epochs, seed=0, runs_dir=runs_dir)
    print(run.accuracy().query("split == 'test'").to_string(index=False))
    run_analyses(run)
    print(f"run folder: {run.path}")
    if report:
        from workbench.cli.report import render_run_report

        html = render_run_report(run.path)
        print(f"report: {html}")
    print(f"done in {time.perf_counter() - t0:.0f}s")
    return run
