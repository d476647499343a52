"""``workbench export mlflow RUN_OR_SWEEP [--tracking-uri URI]``: recorded runs into an MLflow tracking store.

Parameters, per-epoch and final metrics, configuration tags (so MLflow groups the seeds of one
configuration) and the analysis tables as artifacts; see :mod:`workbench.jobs.mlflow_tracking`.
The local file store ``./mlruns`` by default, any tracking server by URI.

Example
-------
>>> from workbench.cli import main
>>> main(["export", "mlflow", "sweep-5bb864c8a5", "--tracking-uri", "http://127.0.0.1:5000"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse

from workbench.cli.common import print_table


def cmd_export_mlflow(args: argparse.Namespace) -> int:
    from workbench.jobs.mlflow_tracking import EXPERIMENT, export, resolve_tracking_uri

    uri = resolve_tracking_uri(args.tracking_uri)
    table = export(args.sources, runs_dir=args.runs_dir, tracking_uri=uri, experiment=args.experiment or EXPERIMENT,
                   force=args.force)
    print_table(table)
    done = int((table["status"] == "exported").sum())
    print(f"{done} run(s) exported, {len(table) - done} already there, to experiment "
          f"{args.experiment or EXPERIMENT!r} at {uri}")
    return 0


def register(subparsers) -> None:
    """Add ``export mlflow`` to the ``workbench`` CLI."""
    p = subparsers.add_parser("export", help="export recorded runs to another tool (mlflow)")
    targets = p.add_subparsers(dest="target", required=True)
    m = targets.add_parser("mlflow", help="runs or sweeps into an MLflow tracking store, grouped by configuration")
    m.add_argument("sources", nargs="+", metavar="RUN_OR_SWEEP", help="run ids, run folders, sweep ids, or 'all'")
    m.add_argument("--tracking-uri", default=None,
                   help="MLflow tracking URI or folder (default $MLFLOW_TRACKING_URI, else ./mlruns)")
    m.add_argument("--experiment", default=None, help="MLflow experiment name (default 'workbench')")
    m.add_argument("--force", action="store_true", help="replace runs already exported instead of skipping them")
    m.add_argument("--runs-dir", default=argparse.SUPPRESS, help="run store root")
    m.set_defaults(func=cmd_export_mlflow)
