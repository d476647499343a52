"""``workbench runs``: list the recorded runs (id, status, dataset, fusion, strategy, seed, accuracy)."""

from __future__ import annotations

import argparse

from workbench.cli.common import print_table


def cmd_runs(args: argparse.Namespace) -> int:
    from workbench.store.runs import RunStore

    print_table(RunStore(args.runs_dir).table())
    return 0


def register(subparsers) -> None:
    """Add ``runs`` to the ``workbench`` CLI."""
    p = subparsers.add_parser("runs", help="list recorded runs")
    p.set_defaults(func=cmd_runs)
