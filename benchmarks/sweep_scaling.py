"""Wall time of a small sweep with 1 (in-process) and 2 (LocalCluster) workers.

    PYTHONPATH=$PWD python benchmarks/sweep_scaling.py [--cells-per-seed 2] [--seeds 4] [--epochs 10] [--n 1000]

Each row runs the same grid into a fresh run store, so nothing is skipped. The 2-worker wall
time includes starting the LocalCluster (worker processes import torch) -- what a user waits for.
The 1-minute load average is printed because the figures are only comparable on an idle machine.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import pandas as pd

from workbench.jobs.sweep import open_client, sweep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--workers", default="1,2")
    args = ap.parse_args()
    grid = {"dataset": "synthetic-imbalance", "fusion": ["concat", "late"], "seed": list(range(args.seeds)),
            "epochs": args.epochs, "dataset_params": {"n": args.n}}
    rows = []
    for workers in (int(w) for w in args.workers.split(",")):
        with tempfile.TemporaryDirectory() as root:
            t0 = time.perf_counter()
            with open_client(workers=workers, dashboard=False) as client:
                started = time.perf_counter() - t0
                table = sweep(grid, runs_dir=root, client=client, workers=workers, progress=False)
            wall = time.perf_counter() - t0
        rows.append({"workers": workers, "cells": len(table), "complete": int((table["status"] == "complete").sum()),
                     "cluster_start_s": round(started, 1), "wall_s": round(wall, 1),
                     "cell_s_mean": round(float(table["wall_s"].mean()), 2), "load_avg_1m": os.getloadavg()[0]})
    frame = pd.DataFrame(rows)
    frame["speedup"] = (frame["wall_s"].iloc[0] / frame["wall_s"]).round(2)
    print(f"grid: synthetic-imbalance n={args.n}, fusion concat/late x {args.seeds} seeds, {args.epochs} epochs, "
          f"{os.cpu_count()} cores")
    print(frame.to_string(index=False))


if __name__ == "__main__":
    main()
