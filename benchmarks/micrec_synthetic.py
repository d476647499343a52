"""MICRec on the synthetic two-domain data with a known oracle: the issue's targets, over seeds.

1. Model selection on *validation* items of separate tuning seeds (100, 101): learning rate and
   the anchor weight of MICRec, by the mean validation Recall@20 (the test items are not read).
2. Evaluation on seeds 0, 1, 2 (data and training seed together): test Recall@20 / NDCG@20 of the
   known users per domain for the oracle (true logits), popularity, BPR-MF, LightGCN, IGCN, MICRec
   without anchors and MICRec with anchors; MICRec / oracle per seed with its t-interval.
3. The anchor-overlap curve (:func:`workbench.analyses.recommendation.anchor_overlap_curve`) in
   the sparse domain B: anchors on vs off at overlaps 0, 0.25, 0.5, 0.75, 1, paired by seed.

Every fit: batch 512, up to 100 epochs, early stopping on validation Recall@20 every 2 epochs
(patience 5), d = 64, 3 layers for graph models.

    PYTHONPATH=. python benchmarks/micrec_synthetic.py            # about 15 min on 2 shared cores
    PYTHONPATH=. python benchmarks/micrec_synthetic.py --part curve --lr 3e-3 --anchor-reg 0.03
"""

from __future__ import annotations

import argparse
import warnings
from functools import partial

import numpy as np
import pandas as pd

from data_catalog.synthetic_recsys import oracle_scores, synthetic_recsys
from workbench.analyses.recommendation import anchor_overlap_curve
from workbench.stats.intervals import t_interval
from workbench.stats.ranking import as_item_sets, ranking_metrics, top_k_from_scores
from workbench.training.ranking import evaluate_ranking, fit_ranking

SIZE = {"n_users": 300, "n_items": 150}
COMMON = {"batch_size": 512, "epochs": 100, "valid_every": 2, "patience": 5, "progress": False}


def oracle(data, d: str) -> pd.DataFrame:
    dom = data.domains[d]
    known = ~np.isin(dom.test[:, 0], data.new_users)
    seen = np.concatenate([dom.train, dom.valid])
    top = top_k_from_scores(
        oracle_scores(data, d), k=20, exclude=as_item_sets(seen, n_users=data.n_users)
    )
    return ranking_metrics(top, as_item_sets(dom.test[known], n_users=data.n_users), ks=(20,))


def select(grid: list[dict], seeds=(100, 101)) -> tuple[dict, pd.DataFrame]:
    rows = []
    for kw in grid:
        vals = []
        for s in seeds:
            data = synthetic_recsys(**SIZE, seed=s)
            fit = fit_ranking(data, model="micrec", seed=s, **COMMON, **kw)
            vals.append(evaluate_ranking(fit, data, split="valid", ks=(20,))["recall@20"].mean())
        rows.append({**kw, "valid_recall@20": float(np.mean(vals))})
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    best = grid[int(table["valid_recall@20"].to_numpy().argmax())]
    return best, table


def main(
    seeds=(0, 1, 2),
    overlaps=(0.0, 0.25, 0.5, 0.75, 1.0),
    part: str = "all",
    best: dict | None = None,
) -> None:
    warnings.filterwarnings("ignore")
    if best is None:
        grid = [
            {"lr": lr, "anchors": True, "anchor_reg": a}
            for lr in (1e-2, 3e-3)
            for a in (0.03, 0.1, 0.3, 1.0)
        ]
        best, _ = select(grid)
        print("selected on validation (tuning seeds 100, 101):", best)
    if part in ("all", "models"):
        models(seeds, best)
    if part in ("all", "curve"):
        curve(seeds, overlaps, best)


def models(seeds, best: dict) -> None:
    lr = best["lr"]
    rows = []
    for s in seeds:
        data = synthetic_recsys(**SIZE, seed=s)
        for d in ("A", "B"):
            rows.append(
                {
                    "seed": s,
                    "model": "oracle",
                    "domain": d,
                    "recall@20": oracle(data, d)["recall@20"].mean(),
                }
            )
        fits = {
            "popularity": fit_ranking(data, model="popularity"),
            "BPR-MF": fit_ranking(data, model="mf", lr=lr, seed=s, **COMMON),
            "LightGCN": fit_ranking(data, model="lightgcn", lr=lr, seed=s, **COMMON),
            "IGCN": fit_ranking(data, model="igcn", lr=lr, seed=s, **COMMON),
            "MICRec (no anchors)": fit_ranking(data, model="micrec", lr=lr, seed=s, **COMMON),
            "MICRec": fit_ranking(data, model="micrec", seed=s, **COMMON, **best),
        }
        for name, fit in fits.items():
            f = evaluate_ranking(fit, data, ks=(20,))
            for d, part in f.groupby("domain"):
                rows.append(
                    {
                        "seed": s,
                        "model": name,
                        "domain": d,
                        "recall@20": part["recall@20"].mean(),
                        "ndcg@20": part["ndcg@20"].mean(),
                    }
                )
        print(pd.DataFrame(rows).query("seed == @s").round(4).to_string(index=False), flush=True)
    runs = pd.DataFrame(rows)
    print(
        "\n| model | domain | Recall@20 (mean over seeds, 95% t-interval) | / oracle (paired by seed) |"
    )
    print("|---|---|---|---|")
    for (m, d), part in runs.groupby(["model", "domain"], sort=False):
        part = part.sort_values("seed")
        orc = (
            runs.query("model == 'oracle' and domain == @d")
            .sort_values("seed")["recall@20"]
            .to_numpy()
        )
        v, lo, hi = t_interval(part["recall@20"].to_numpy())
        r, rlo, rhi = t_interval(part["recall@20"].to_numpy() / orc)
        print(f"| {m} | {d} | {v:.3f} [{lo:.3f}, {hi:.3f}] | {r:.2f} [{rlo:.2f}, {rhi:.2f}] |")


def curve(seeds, overlaps, best: dict) -> None:
    training = {k: v for k, v in {**COMMON, **best}.items() if k not in ("anchors", "progress")}
    res = anchor_overlap_curve(
        partial(synthetic_recsys, **SIZE),
        overlaps=overlaps,
        seeds=seeds,
        progress=False,
        **training,
    )
    print("\nAnchor-overlap curve, domain B (sparse), Recall@20, anchors on vs off, paired by seed")
    print(
        "| overlap | anchors | off | on | relative gain (95% t-interval) |\n|---|---|---|---|---|"
    )
    for _, g in res.gain.iterrows():
        c = res.curve[res.curve["overlap"] == g["overlap"]].set_index("anchors")["recall@20"]
        print(
            f"| {g['overlap']:.2f} | {g['n_anchors']:.0f} | {c[False]:.3f} | {c[True]:.3f} | "
            f"{100 * g['gain']:+.1f}% [{100 * g['gain_ci_lower']:+.1f}, {100 * g['gain_ci_upper']:+.1f}] |"
        )


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--part", choices=["all", "models", "curve"], default="all")
    p.add_argument("--lr", type=float, help="skip the selection: this learning rate ...")
    p.add_argument("--anchor-reg", type=float, help="... and this anchor weight")
    a = p.parse_args()
    chosen = None if a.lr is None else {"lr": a.lr, "anchors": True, "anchor_reg": a.anchor_reg}
    main(seeds=tuple(a.seeds), part=a.part, best=chosen)
