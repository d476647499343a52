"""Retrieval benchmarks (issue: contrastive alignment and retrieval). Prints four tables:

1. The XOR curve: ConFu vs CLIP 2->1 top-1 against p over seeds (t-intervals), the paired
   difference per p and the Bayes oracle (:func:`workbench.analyses.retrieval.xor_curve`).
2. mfeat, M = 3..6 views (real data): mean 1->1 Recall@10 between views and the 2->1 gain of each
   fused pair over its better member (paired bootstrap intervals), linear-probe accuracies, and
   training throughput (pairs per second) under AdamW + cosine, the authors' optimizer.
3. Ranking cost for galleries of 10k and 100k at d = 256: our chunked ranks against a dense
   ``n x n`` computation and against FAISS's exact inner-product index (``faiss-cpu``; skipped
   with a message when not installed), time and peak memory (each in a fresh subprocess, peak
   resident memory above the inputs), and whether Recall@{1,5,10} agree.

Run: ``python benchmarks/retrieval.py [--seeds 3] [--quick]`` (``pip install faiss-cpu`` for the
FAISS column). Numbers are from the machine it runs on; the README quotes a 2-core CPU run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np
import pandas as pd

from workbench import load_dataset, train
from workbench.analyses.retrieval import retrieval_analysis, xor_curve

MFEAT_VIEWS = ["fourier", "profile", "karhunen", "pixel", "zernike", "morphological"]


def mfeat_table(ms: list[int], epochs: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One ConFu run per number of views M (the first M of MFEAT_VIEWS)."""
    summary, gains = [], []
    full = load_dataset("mfeat")
    for m in ms:
        ds = full.select_modalities(MFEAT_VIEWS[:m])
        t0 = time.perf_counter()
        run = train(ds, task="alignment", task_params={"dim": 64}, epochs=epochs, batch_size=128, optimizer="adamw",
                    schedule="cosine", lr=1e-3, weight_decay=1e-4, seed=seed, save=False, progress=False)
        seconds = time.perf_counter() - t0
        res = retrieval_analysis(run, n_boot=500, n_points=10)
        r10 = res.table.query("metric == 'R@10'")
        one = r10.query("kind == '1->1'")["value"]
        epoch_s = float(run.history["seconds"].mean())
        n_train = int((run.predictions["split"] == "train").sum())
        g = res.gains.assign(M=m)
        probes = res.probes.set_index("representation")["accuracy"]
        summary.append({
            "M": m, "1->1 R@10 mean": one.mean(), "1->1 R@10 min": one.min(), "1->1 R@10 max": one.max(),
            "2->1 gain mean": g["gain"].mean(), "2->1 gains > 0 (CI)": int((g["gain_ci_lower"] > 0).sum()),
            "2->1 gains < 0 (CI)": int((g["gain_ci_upper"] < 0).sum()), "2->1 directions": len(g),
            "probe best single": probes[[v for v in ds.modality_names]].max(),
            "probe best pair": probes[[i for i in probes.index if "+" in i]].max() if m > 2 else np.nan,
            "pairs/s": n_train / epoch_s, "train s": seconds})
        gains.append(g)
    return pd.DataFrame(summary), pd.concat(gains, ignore_index=True)


RANK_CODE = r"""
import json, resource, sys, time
import numpy as np
n, d, method = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(0)
q = rng.standard_normal((n, d), dtype=np.float32); q /= np.linalg.norm(q, axis=1, keepdims=True)
g = q + rng.standard_normal((n, d), dtype=np.float32) / 8; g /= np.linalg.norm(g, axis=1, keepdims=True)
if method == "chunked":
    from workbench.stats.retrieval import partner_ranks
elif method == "faiss":
    import faiss
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
if method == "chunked":
    ranks = partner_ranks(q, g, chunk=1024)
    recall = {k: float((ranks <= k).mean()) for k in (1, 5, 10)}
elif method == "dense":
    sims = q @ g.T
    ranks = 1 + (sims > np.diag(sims)[:, None]).sum(1)
    recall = {k: float((ranks <= k).mean()) for k in (1, 5, 10)}
else:
    index = faiss.IndexFlatIP(d)
    index.add(g)
    _, top = index.search(q, 10)
    hit = top == np.arange(n)[:, None]
    recall = {k: float(hit[:, :k].any(1).mean()) for k in (1, 5, 10)}
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_mb_above_inputs": max(peak - base, 0) / 1024, "recall": recall}))
"""


def ranking_table(sizes: list[int], d: int = 256) -> pd.DataFrame:
    try:
        import faiss  # noqa: F401
        methods = ["chunked", "dense", "faiss"]
    except ImportError:
        print("faiss-cpu is not installed: the FAISS column is skipped (pip install faiss-cpu)")
        methods = ["chunked", "dense"]
    rows = []
    for n in sizes:
        for method in methods:
            if method == "dense" and n * n * 4 > 8e9:
                rows.append({"gallery": n, "method": method, "seconds": np.nan, "peak MB": n * n * 4 / 2**20,
                             "note": "not run: the n x n matrix alone needs this much"})
                continue
            out = subprocess.run([sys.executable, "-c", RANK_CODE, str(n), str(d), method], capture_output=True,
                                 text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append({"gallery": n, "method": method, "seconds": r["seconds"], "peak MB": r["peak_mb_above_inputs"],
                         **{f"R@{k}": v for k, v in r["recall"].items()}, "note": ""})
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=30, help="mfeat training epochs")
    ap.add_argument("--quick", action="store_true", help="2 seeds, 3 values of p, M = 3 and 4, 10k gallery only")
    args = ap.parse_args()
    pd.set_option("display.width", 200)
    ps = (0.0, 0.5, 1.0) if args.quick else (0.0, 0.25, 0.5, 0.75, 1.0)
    curve = xor_curve(ps=ps, seeds=2 if args.quick else args.seeds, progress=False)
    print("XOR curve (d = 3, n = 4000; 2->1 top-1 among the 8 candidates)")
    print(curve.curve.round(3).to_string(index=False))
    print("\nConFu minus CLIP, paired by seed")
    print(curve.differences.round(3).to_string(index=False))
    summary, gains = mfeat_table([3, 4] if args.quick else [3, 4, 5, 6], args.epochs)
    print("\nmfeat: ConFu (AdamW + cosine) per number of views M; test split, 400 queries")
    print(summary.round(3).to_string(index=False))
    print("\nmfeat: 2->1 gains over the better member (R@10), M = 3")
    cols = ["query", "gallery", "fused", "best_single", "single", "gain", "gain_ci_lower", "gain_ci_upper"]
    print(gains.query("M == 3")[cols].round(3).to_string(index=False))
    print("\nRanking a gallery (d = 256): time, peak memory, Recall@k agreement")
    print(ranking_table([10_000] if args.quick else [10_000, 100_000]).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
