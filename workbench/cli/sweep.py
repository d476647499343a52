"""``workbench sweep`` and ``workbench compare``.

    workbench sweep --dataset mfeat,synthetic-imbalance --strategy naive,ogm_ge --seeds 0,1,2 --epochs 5
    workbench sweep ... --workers 1                       # in this process
    workbench sweep ... --scheduler tcp://HOST:8786       # any Dask cluster
    workbench compare SWEEP_ID_OR_RUN_ID ... [--baseline naive] [--metric acc_fused]
"""

from __future__ import annotations

import argparse

import pandas as pd


def _kv(pairs: list[str] | None) -> dict:
    from workbench.cli.common import parse_kv

    return dict(parse_kv(pairs)) if pairs else {}


def _strategy_params(params: dict, strategies: str) -> dict:
    """``--param ogm_ge.alpha=0.8`` applies to one strategy; ``--param alpha=0.8`` to every one."""
    names = strategies.split(",")
    if not any(k.partition(".")[0] in names for k in params):
        return params
    out: dict = {n: {} for n in names}
    for key, value in params.items():
        name, dot, field = key.partition(".")
        for target in ([name] if dot and name in names else names):
            out[target][field if dot and name in names else key] = value
    return out


def cmd_sweep(args: argparse.Namespace) -> int:
    from workbench.jobs.sweep import sweep

    grid = {"dataset": args.dataset, "strategy": args.strategy, "fusion": args.fusion, "seed": args.seeds,
            "epochs": args.epochs, "dataset_params": _kv(args.dataset_param),
            "strategy_params": _strategy_params(_kv(args.param), args.strategy), **_kv(args.train_param)}
    table = sweep(grid, runs_dir=args.runs_dir, scheduler=args.scheduler, workers=args.workers,
                  retries=args.retries, force=args.force, connect_timeout=args.connect_timeout)
    cols = [c for c in ["run_id", "status", "acc_fused", "wall_s"] if c in table.columns]
    with pd.option_context("display.width", 200, "display.max_colwidth", 70):
        print(table[cols].to_string(index=False))
    print(f"compare with: workbench compare {table.attrs['sweep_id']}")
    return 1 if (table["status"] == "failed").any() else 0


def cmd_compare(args: argparse.Namespace) -> int:
    from workbench.analyses.compare import compare

    cmp = compare(args.sources, runs_dir=args.runs_dir, baseline=args.baseline, level=args.level)
    metrics = args.metric or cmp.metrics()
    summary = cmp.summary[cmp.summary["metric"].isin(metrics)]
    paired = cmp.paired[cmp.paired["metric"].isin(metrics)]
    with pd.option_context("display.width", 250, "display.max_colwidth", 60, "display.float_format", "{:.4f}".format):
        print(summary[["config", "metric", "n", "mean", "sd", "mean_ci_lower", "mean_ci_upper"]].to_string(index=False))
        if len(paired):
            print("\npaired differences (config_b - config_a, same seeds):")
            print(paired[["config_a", "config_b", "metric", "n", "mean_diff", "mean_diff_ci_lower",
                          "mean_diff_ci_upper", "p_value"]].to_string(index=False))
    if args.save:
        print(f"saved: {cmp.save(args.save)}")
    return 0


def register(subparsers) -> None:
    """Add ``sweep`` and ``compare`` to the ``workbench`` CLI."""
    p = subparsers.add_parser("sweep", help="train a grid of runs (datasets x strategies x fusions x seeds) on Dask")
    p.add_argument("--dataset", required=True, help="comma-separated dataset names")
    p.add_argument("--strategy", default="naive", help="comma-separated strategies")
    p.add_argument("--fusion", default="concat", help="comma-separated fusions")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--param", action="append", metavar="[STRATEGY.]KEY=VALUE",
                   help="strategy parameter (repeatable); STRATEGY. limits it to one strategy")
    p.add_argument("--dataset-param", action="append", metavar="KEY=VALUE", help="dataset parameter, e.g. n=300")
    p.add_argument("--train-param", action="append", metavar="KEY=VALUE", help="TrainConfig field, e.g. lr=0.01")
    p.add_argument("--workers", type=int, default=None, help="local worker processes (default: one per core; 1: in process)")
    p.add_argument("--scheduler", default=None, help="address of a running Dask scheduler, e.g. tcp://HOST:8786")
    p.add_argument("--retries", type=int, default=2)
    p.add_argument("--connect-timeout", type=float, default=5.0)
    p.add_argument("--force", action="store_true", help="redo complete runs too")
    p.add_argument("--runs-dir", default=argparse.SUPPRESS, help="run store root")
    p.set_defaults(func=cmd_sweep)

    p = subparsers.add_parser("compare", help="compare runs grouped by configuration across seeds")
    p.add_argument("sources", nargs="+", help="run ids, run folders, sweep ids, or 'all'")
    p.add_argument("--baseline", default=None, help="strategy name or configuration label to compare against")
    p.add_argument("--metric", action="append", help="metric to show (repeatable; default all)")
    p.add_argument("--level", type=float, default=0.95)
    p.add_argument("--save", default=None, metavar="FOLDER", help="save the Comparison result there")
    p.add_argument("--runs-dir", default=argparse.SUPPRESS, help="run store root")
    p.set_defaults(func=cmd_compare)
