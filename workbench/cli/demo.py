"""``workbench demo [--epochs N] [--no-report]``: train on the default data, run the analyses,
write an HTML report (:func:`workbench.jobs.demo.run_demo`)."""

from __future__ import annotations

import argparse


def cmd_demo(args: argparse.Namespace) -> int:
    from workbench.jobs.demo import run_demo
    from workbench.store.runs import RunStore

    RunStore(args.runs_dir).check_writable()
    run_demo(runs_dir=args.runs_dir, epochs=args.epochs, report=not args.no_report)
    return 0


def register(subparsers) -> None:
    """Add ``demo`` to the ``workbench`` CLI."""
    p = subparsers.add_parser("demo", help="train on the default dataset, run the analyses, write an HTML report")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--no-report", action="store_true", help="skip the HTML report")
    p.set_defaults(func=cmd_demo)
