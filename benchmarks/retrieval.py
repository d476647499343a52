"""Retrieval benchmarks: the XOR curve (ConFu vs CLIP against the oracle, over seeds) and mfeat
1->1 / 2->1 Recall@10 with intervals, plus chunked ranking time on a large gallery.

Run: ``python benchmarks/retrieval.py [--seeds 3] [--epochs 20]`` (prints tables).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from workbench import load_dataset, train
from workbench.analyses.retrieval import retrieval_table, xor_2to1_accuracy
from workbench.stats.intervals import t_interval
from workbench.stats.retrieval import partner_ranks
from workbench.tasks.alignment import embeddings_from_frame


def xor_curve(seeds: int, epochs: int, ps=(0.0, 0.25, 0.5, 0.75, 1.0)) -> pd.DataFrame:
    rows = []
    for p in ps:
        for lam, name in [(0.5, "ConFu"), (0.0, "CLIP")]:
            acc = []
            for seed in range(seeds):
                ds = load_dataset("xor-trimodal", n=4000, d=3, p=p, seed=seed)
                run = train(ds, task="alignment", task_params={"lam": lam, "dim": 32}, epochs=epochs, batch_size=256,
                            lr=3e-3, hidden=64, embed=32, dropout=0.0, seed=seed, save=False, progress=False)
                acc.append(xor_2to1_accuracy(run.model, ds, run.splits.test))
            mean, lo, hi = t_interval(np.array(acc))
            rows.append({"p": p, "method": name, "top1": float(mean), "top1_ci_lower": float(lo),
                         "top1_ci_upper": float(hi), "oracle": p + (1 - p) / 8})
    return pd.DataFrame(rows)


def mfeat_retrieval(epochs: int, seed: int = 0) -> pd.DataFrame:
    views = ["fourier", "pixel", "profile"]
    ds = load_dataset("mfeat")
    ds = ds.select_modalities(views)
    run = train(ds, task="alignment", task_params={"dim": 64}, epochs=epochs, batch_size=256, save=False,
                progress=False, seed=seed)
    test = run.predictions[run.predictions["split"] == "test"]
    z = embeddings_from_frame(test)
    singles = {m: v for m, v in z.items() if "+" not in m}
    pairs = {m: v for m, v in z.items() if "+" in m}
    t = retrieval_table(singles, pairs).table
    return t[t["metric"] == "R@10"]


def ranking_time(n: int, d: int = 256) -> dict:
    rng = np.random.default_rng(0)
    q = rng.standard_normal((n, d)).astype(np.float32)
    g = q + rng.standard_normal((n, d)).astype(np.float32)
    t0 = time.perf_counter()
    partner_ranks(q, g, chunk=1024)
    return {"gallery": n, "d": d, "seconds": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=20)
    args = ap.parse_args()
    print(xor_curve(args.seeds, args.epochs).to_string(index=False))
    print(mfeat_retrieval(args.epochs).to_string(index=False))
    print(pd.DataFrame([ranking_time(10_000), ranking_time(100_000)]).to_string(index=False))


if __name__ == "__main__":
    main()
