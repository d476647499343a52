"""``workbench recommend``: train a recommender on interaction data and record the run.

Flags are derived from :class:`~workbench.training.config.RankingConfig`, one per field, as
``workbench train``'s are from ``TrainConfig``:

    workbench recommend --dataset synthetic-recsys|ml-100k|ml-100k-genre-domains|ml-1m|ml-1m-genre-domains
                        [--data-param KEY=VALUE ...] [--model micrec] [--anchors] [--epochs N] [--ks 10 20]
                        [--no-analyses] [--n-boot N]

Example
-------
>>> from workbench.cli.main import build_parser
>>> args = build_parser().parse_args(["recommend", "--model", "igcn", "--ks", "5", "10", "--data-param", "n_users=80"])
>>> args.model, args.ks, args.data_param
('igcn', [5, 10], ['n_users=80'])
"""

from __future__ import annotations

import argparse

from workbench.cli.common import parse_kv
from workbench.cli.train import add_config_arguments, config_from_args
from workbench.training.config import RankingConfig


def cmd_recommend(args: argparse.Namespace) -> int:
    """Check every argument before any data are read, then train, analyse and record the run."""
    from data_catalog.recsys import REC_DATASETS
    from workbench.store.runs import RunStore
    from workbench.training.train_ranking import train_ranking

    config = config_from_args(args, RankingConfig)
    RankingConfig(**config)
    if args.dataset not in REC_DATASETS:
        raise ValueError(f"--dataset: unknown interaction dataset {args.dataset!r}; choose one of {list(REC_DATASETS)}")
    params = dict(parse_kv(args.data_param or [], flag="--data-param"))
    RunStore(args.runs_dir).check_writable()
    run = train_ranking(args.dataset, dataset_params=params, runs_dir=args.runs_dir, analyses=args.analyses,
                        n_boot=args.n_boot, **config)
    print(run.accuracy().to_string(index=False))
    print(f"run: {run.path}")
    return 0


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("recommend", help="train a recommender (INMO, MICRec, baselines) and record the run",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dataset", default="synthetic-recsys", help="interaction dataset (data_catalog.recsys.REC_DATASETS)")
    p.add_argument("--data-param", action="append", metavar="KEY=VALUE",
                   help="a parameter of the dataset's generator or loader, e.g. n_users=400 or overlap=0.5")
    p.add_argument("--analyses", action=argparse.BooleanOptionalAction, default=True,
                   help="save the recommendation analysis, MICRec's modality Shapley values and top-K lists")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap replicates of the intervals")
    add_config_arguments(p, RankingConfig)
    p.set_defaults(func=cmd_recommend)
    return p
