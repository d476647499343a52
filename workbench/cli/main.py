"""The ``workbench`` command line.

Core commands live here; each capability adds its own subcommands from a module listed in
:data:`COMMAND_MODULES` (each exposes ``register(subparsers)``), so the CLI only composes.

    workbench demo                     train on the default data, run the analyses, write a report
    workbench datasets [add PATH]      list the catalog / register a data folder
    workbench train --dataset NAME --fusion late|concat|sum|gated --epochs N --seed S
    workbench runs                     list recorded runs

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

import pandas as pd

# name of a module with ``register(subparsers)``; capabilities append theirs
COMMAND_MODULES: list[str] = []
COMMAND_MODULES.append("workbench.cli.serve")
COMMAND_MODULES.append("workbench.cli.report")
COMMAND_MODULES.append("workbench.cli.sweep")


def _print_table(frame: pd.DataFrame) -> None:
    with pd.option_context("display.max_colwidth", 60, "display.width", 200):
        print(frame.to_string(index=False) if len(frame) else "(none)")


def cmd_datasets(args: argparse.Namespace) -> int:
    from data_catalog.folder import register_folder
    from data_catalog.registry import catalog_table, user_catalog_dir

    if args.action == "add":
        if not args.path:
            raise SystemExit("workbench datasets add PATH [--name NAME]: PATH is required")
        target = register_folder(args.path, catalog_dir=user_catalog_dir(), name=args.name)
        print(f"registered {args.path} as {target.stem} ({target})")
        return 0
    _print_table(catalog_table())
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from workbench.store.runs import RunStore, train
    from workbench.strategies.base import make_strategy
    from workbench.training.trainer import TrainConfig

    params = dict(_parse_kv(args.param)) if args.param else {}
    # every argument is checked before the dataset is loaded or anything is written
    TrainConfig(fusion=args.fusion, epochs=args.epochs, seed=args.seed, strategy=args.strategy,
                strategy_params=params, batch_size=args.batch_size, lr=args.lr, patience=args.patience,
                device=args.device, progress=False)
    make_strategy(args.strategy, **params)
    RunStore(args.runs_dir).check_writable()
    run = train(args.dataset, fusion=args.fusion, epochs=args.epochs, seed=args.seed, strategy=args.strategy,
                strategy_params=params, runs_dir=args.runs_dir, batch_size=args.batch_size, lr=args.lr,
                patience=args.patience, device=args.device)
    print(run.accuracy().query("split == 'test'").to_string(index=False))
    print(f"run: {run.path}")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from workbench.store.runs import RunStore

    _print_table(RunStore(args.runs_dir).table())
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from workbench.jobs.demo import run_demo
    from workbench.store.runs import RunStore

    RunStore(args.runs_dir).check_writable()
    run_demo(runs_dir=args.runs_dir, epochs=args.epochs, report=not args.no_report)
    return 0


def _parse_kv(pairs: list[str]):
    import json

    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"--param {pair!r}: expected KEY=VALUE with KEY a parameter name")
        try:
            yield key, json.loads(value)  # numbers, booleans, lists; never evaluated as code
        except json.JSONDecodeError:
            # 'inf'/'nan' are not JSON but are numbers to a user: parse them so that the
            # config's finiteness check names the parameter instead of a strategy failing later
            yield key, float(value) if value.strip().lower().lstrip("+-") in ("inf", "infinity", "nan") else value


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

    p = sub.add_parser("demo", help="train on the default dataset, run the analyses, write an HTML report")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--no-report", action="store_true", help="skip the HTML report")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("datasets", help="list the dataset catalog, or add a data folder")
    p.add_argument("action", nargs="?", choices=["list", "add"], default="list")
    p.add_argument("path", nargs="?")
    p.add_argument("--name")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("train", help="train a multimodal model and record the run")
    p.add_argument("--dataset", default="mfeat")
    # workbench.models.multimodal.FUSIONS, spelled out so that parsing does not import torch
    p.add_argument("--fusion", default="concat", choices=["late", "concat", "sum", "gated", "mlp"])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--strategy", default="naive")
    p.add_argument("--param", action="append", metavar="KEY=VALUE", help="strategy parameter (repeatable)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--patience", type=int, default=None)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("runs", help="list recorded runs")
    p.set_defaults(func=cmd_runs)

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
