"""The ``workbench`` command line: builds the parser and dispatches.

Every command is one module listed in :data:`COMMAND_MODULES` (each exposes
``register(subparsers)``), so this module only composes:

    workbench demo                     train on the default data, run the analyses, write a report
    workbench datasets [add PATH]      list the catalog / register a data folder
    workbench train --dataset NAME ... one flag per TrainConfig field (workbench train --help)
    workbench runs                     list recorded runs
    workbench serve | report | sweep | compare
    workbench figures RUN_OR_SWEEP     paper-ready PDF/SVG/PNG figures of a run's results or a sweep
    workbench export mlflow RUN_OR_SWEEP   runs into an MLflow tracking store (--tracking-uri URI)
    workbench tune --dataset NAME --space alpha=0.1:1 ...   Optuna search on a validation metric
    workbench recommend --dataset ml-100k-genre-domains --model micrec --anchors   a ranking run

Errors: a user error (bad data, card, parameter, path; the project's error classes,
``ValueError``, ``OSError``, an unloadable checkpoint) prints one line naming the file or
parameter and exits with status 2. Anything else is a bug: one line with the exception type
and exit status 1; ``workbench --debug ...`` shows its traceback (and those of user errors).
"""

from __future__ import annotations

import argparse
import importlib
import os
import pickle
import sys
from pathlib import Path

# name of a module with ``register(subparsers)``; capabilities append theirs
COMMAND_MODULES: list[str] = ["workbench.cli.demo", "workbench.cli.datasets", "workbench.cli.train",
                              "workbench.cli.runs"]
COMMAND_MODULES.append("workbench.cli.serve")
COMMAND_MODULES.append("workbench.cli.report")
COMMAND_MODULES.append("workbench.cli.sweep")
COMMAND_MODULES.append("workbench.cli.figures")
COMMAND_MODULES.append("workbench.cli.export")
COMMAND_MODULES.append("workbench.cli.tune")
COMMAND_MODULES.append("workbench.cli.recommend")


def _torch_load_file(exc: BaseException) -> str | None:
    """The file a failing ``torch.load`` was reading, from the traceback (torch's own
    messages name no file, whichever loader in the project called it)."""
    tb, found = exc.__traceback__, None
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name == "load" and frame.f_globals.get("__name__") == "torch.serialization":
            f = frame.f_locals.get("f")
            found = str(f) if isinstance(f, (str, os.PathLike)) else found
        tb = tb.tb_next
    return found


def _is_project_error(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in ("workbench", "data_catalog", "widgets")


def describe_error(exc: Exception) -> tuple[str, int]:
    """One line for ``exc`` and the exit status: 2 for user errors, 1 for bugs."""
    loading = _torch_load_file(exc)
    if isinstance(exc, pickle.UnpicklingError) or (loading and isinstance(exc, (RuntimeError, EOFError))):
        where = loading or "a checkpoint or weights file"
        return (f"{where}: cannot be loaded safely (pickled objects, truncated or corrupt); "
                "move it aside to retrain from scratch"), 2
    if isinstance(exc, OSError):
        names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
        reason = exc.strerror or str(exc)
        return (f"{' -> '.join(names)}: {reason}" if names else reason), 2
    if _is_project_error(exc) or isinstance(exc, (ValueError, RuntimeError, FloatingPointError)):
        text = str(exc) or type(exc).__name__
        return " ".join(text.split()), 2  # one line, however the message was built
    return f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description="Multimodal Workbench")
    parser.add_argument("--runs-dir", default=None, help="run store root (default ./runs or $WORKBENCH_RUNS)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", required=True)

    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "runs_dir", None):
        args.runs_dir = str(Path(args.runs_dir))
    try:
        return int(args.func(args) or 0)
    except Exception as exc:
        if getattr(args, "debug", False):
            raise
        message, status = describe_error(exc)
        print(f"workbench: error: {message}", file=sys.stderr)
        return status


if __name__ == "__main__":
    sys.exit(main())
