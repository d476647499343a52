"""The theory lab at n = 4096, eps = 0.5 (no heterogeneity): UNI/MM ratios over 30 seeds, and why they spread.

    PYTHONPATH=. python benchmarks/theory_lab_ratio.py [--seeds 30] [--sigma-y 0 0.01 0.1]

Prints the mean excess risk per learner (t interval over seeds), the UNI/MM ratio (geometric
mean of the paired ratio, t interval of its log), the per-seed ratio's quantiles, and, for
``sigma_y > 0``, how closely the multimodal learner's excess risk follows its misspecification
floor ``E_x (sin(1/(theta* x)) - E[z|x])^2`` (a function of theta* alone). ~16 min on the shared
2-core CPU at the defaults (the 30 unimodal MLPs per cell dominate).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from workbench.analyses.theory_lab import bayes_predictor, theory_lab


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=30)
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--eps", type=float, default=0.5)
    ap.add_argument("--sigma-y", type=float, nargs="+", default=[0.0, 0.01, 0.1])
    args = ap.parse_args()
    t0 = time.perf_counter()
    res = theory_lab(ns=[args.n], eps=[args.eps], sigma_y=args.sigma_y, learners=["mm", "uni_erm", "uni_mlp"],
                     seeds=args.seeds, n_test=4096, progress=False)
    wall = time.perf_counter() - t0
    pd.set_option("display.width", 200)
    print(res.summary.drop(columns=["n", "eps", "x_only"]).to_string(index=False))
    print()
    print(res.ratios.drop(columns=["n", "eps", "x_only"]).to_string(index=False))
    x = args.eps + (1 - args.eps) * (np.arange(4096) + 0.5) / 4096
    for sy in args.sigma_y:
        p = res.runs[res.runs["sigma_y"] == sy].pivot(index="seed", columns="learner", values="excess_risk")
        theta = res.runs[(res.runs["sigma_y"] == sy) & (res.runs["learner"] == "mm")].sort_values("seed")["theta"]
        q = np.quantile(p["uni_mlp"] / p["mm"].clip(lower=1e-16), [0.1, 0.5, 0.9])
        line = f"\nsigma_y={sy}: per-seed uni_mlp/mm ratio 10/50/90%: {q[0]:.3g} / {q[1]:.3g} / {q[2]:.3g}"
        if sy > 0:
            th = theta.to_numpy()
            floor = ((np.sin(1 / (th[:, None] * x)) - bayes_predictor(x, th, sy)) ** 2).mean(1)
            ratio = p["mm"].to_numpy() / floor
            line += (f"; mm / floor median {np.median(ratio):.3f}, corr(log mm, log floor) "
                     f"{np.corrcoef(np.log(p['mm']), np.log(floor))[0, 1]:.3f}, floor {floor.min():.2g}..{floor.max():.2g}"
                     f"; var(log mm) {np.var(np.log(p['mm'])):.2f} vs var(log uni_mlp) {np.var(np.log(p['uni_mlp'])):.2f}")
        print(line)
    print(f"\nwall: {wall:.0f} s")


if __name__ == "__main__":
    main()
