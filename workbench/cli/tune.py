"""``workbench tune``: hyperparameter search with Optuna over runs of the run store (validation metric only).

Example
-------
>>> from workbench.cli import main
>>> main(["tune", "--dataset", "synthetic-imbalance", "--strategy", "ogm_ge", "--space", "alpha=0.1:1.0",
...       "--trials", "10", "--epochs", "5", "--dataset-param", "n=300"])  # doctest: +SKIP

Parallel trials on Dask: ``--n-workers 4`` (a LocalCluster), ``--scheduler tcp://HOST:8786`` (any cluster), and
``--storage dask`` to host the study on the Dask scheduler (optuna-integration's ``DaskStorage``).
"""

from __future__ import annotations

import argparse

from workbench.cli.common import parse_kv, print_table


def cmd_tune(args: argparse.Namespace) -> int:
    from workbench.jobs.tune import parse_space, tune

    space = parse_space(args.space or [])
    seeds = [int(s) for s in str(args.seeds).split(",") if s.strip()]
    res = tune(args.dataset, space, n_trials=args.trials, metric=args.metric, direction=args.direction, seeds=seeds,
               epochs=args.epochs, strategy=args.strategy, fusion=args.fusion,
               dataset_params=dict(parse_kv(args.dataset_param or [], "--dataset-param")),
               runs_dir=args.runs_dir, storage=args.storage, study_name=args.study, seed=args.sampler_seed,
               prune=not args.no_prune, n_workers=args.n_workers, scheduler=args.scheduler, progress=True,
               **dict(parse_kv(args.train_param or [], "--train-param")))
    print_table(res.trials)
    print(f"best {res.metric} = {res.best_value:.4f} at {res.best_params} (study {res.study_name}, {res.storage})")
    if args.save:
        print(f"saved: {res.save(args.save)}")
    if args.report:
        from workbench.cli.report import render_result_report
        from workbench.jobs.tune import studies_dir

        print(f"report: {render_result_report(studies_dir(args.runs_dir) / res.study_name, args.report)}")
    return 0


def register(subparsers) -> None:
    """Add ``tune`` to the ``workbench`` CLI."""
    p = subparsers.add_parser("tune", help="hyperparameter search (Optuna) on a validation metric, resumable")
    p.add_argument("--dataset", required=True)
    p.add_argument("--space", action="append", metavar="NAME=LOW:HIGH[:log] | NAME=A,B",
                   help="a hyperparameter and its range or choices (repeatable); TrainConfig fields or strategy parameters")
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--metric", default="heldout_acc", help="validation column of the history (heldout_*)")
    p.add_argument("--direction", choices=("maximize", "minimize"), default="maximize")
    p.add_argument("--seeds", default="0", help="comma-separated seeds per trial (value: mean over seeds)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--strategy", default="naive")
    p.add_argument("--fusion", default="concat")
    p.add_argument("--dataset-param", action="append", metavar="KEY=VALUE")
    p.add_argument("--train-param", action="append", metavar="KEY=VALUE", help="fixed TrainConfig field")
    p.add_argument("--storage", default=None,
                   help="Optuna storage URL (default sqlite file in RUNS/.studies/); 'dask': the study hosted by "
                        "the Dask scheduler (optuna-integration's DaskStorage over that sqlite file), 'dask:URL' "
                        "over another storage")
    p.add_argument("--n-workers", type=int, default=None,
                   help="parallel trials on a local Dask cluster of N worker processes (default: one after another; "
                        "with --storage dask: one per core)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="parallel trials on a running Dask cluster (tcp://HOST:PORT); the runs folder must be shared")
    p.add_argument("--study", default=None, help="study name (default: hashed from the search)")
    p.add_argument("--sampler-seed", type=int, default=0)
    p.add_argument("--no-prune", action="store_true", help="never prune on the per-epoch history")
    p.add_argument("--save", default=None, metavar="FOLDER", help="save the TuneResult there (it is always saved "
                   "as RUNS/.studies/STUDY/, where the dashboard's compare tab finds it)")
    p.add_argument("--report", default=None, metavar="HTML", help="write the study's report (trials, sensitivity "
                   "view) as self-contained HTML; the same command on a finished study trains nothing")
    p.add_argument("--runs-dir", default=argparse.SUPPRESS, help="run store root")
    p.set_defaults(func=cmd_tune)
