"""The ``workbench`` command line.

Core commands live here; each capability adds its own subcommands from a module listed in
:data:`COMMAND_MODULES` (each exposes ``register(subparsers)``), so the CLI only composes.

    workbench demo                     train on the default data, run the analyses, write a report
    workbench datasets [add PATH]      list the catalog / register a data folder
    workbench train --dataset NAME --fusion late|concat|sum|gated --epochs N --seed S
    workbench runs                     list recorded runs
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

import pandas as pd

# name of a module with ``register(subparsers)``; capabilities append theirs
COMMAND_MODULES: list[str] = []
COMMAND_MODULES.append("workbench.serve")
COMMAND_MODULES.append("workbench.report")
COMMAND_MODULES.append("workbench.commands.sweep")


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
    from workbench.runs import train

    params = dict(_parse_kv(args.param)) if args.param else {}
    run = train(args.dataset, fusion=args.fusion, epochs=args.epochs, seed=args.seed, strategy=args.strategy,
                strategy_params=params, runs_dir=args.runs_dir, batch_size=args.batch_size, lr=args.lr,
                patience=args.patience, device=args.device)
    print(run.accuracy().query("split == 'test'").to_string(index=False))
    print(f"run: {run.path}")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from workbench.runs import RunStore

    _print_table(RunStore(args.runs_dir).table())
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from workbench.demo import run_demo

    run_demo(runs_dir=args.runs_dir, epochs=args.epochs, report=not args.no_report)
    return 0


def _parse_kv(pairs: list[str]):
    import json

    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            yield key, json.loads(value)  # numbers, booleans, lists; never evaluated as code
        except json.JSONDecodeError:
            yield key, value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description="Multimodal Workbench")
    parser.add_argument("--runs-dir", default=None, help="run store root (default ./runs or $WORKBENCH_RUNS)")
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
    # workbench.models.FUSIONS, spelled out so that parsing does not import torch
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
    except (ValueError, FileNotFoundError, RuntimeError) as exc:  # user errors: one clear line
        print(f"workbench: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
