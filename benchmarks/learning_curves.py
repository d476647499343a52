"""Learning curves for every coalition of mfeat (63 coalitions x 6 sizes x 3 seeds): wall time and table.

    PYTHONPATH=. python benchmarks/learning_curves.py [--epochs 10]
"""

from __future__ import annotations

import argparse
import time

from workbench import load_dataset
from workbench.analyses.learning_curves import learning_curves


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200, 400, 800, 1200])
    args = ap.parse_args()
    ds = load_dataset("mfeat")
    t0 = time.perf_counter()
    res = learning_curves(ds, sizes=args.sizes, seeds=[0, 1, 2], epochs=args.epochs, progress=False)
    wall = time.perf_counter() - t0
    c = res.curves
    top = c[(c["size"] == 1) | (c["size"] == len(ds.modality_names))]
    print(top.pivot(index="coalition", columns="n", values="accuracy").round(3).to_string())
    print(f"\nmodels trained: {len(res.runs)}  wall: {wall:.1f} s  crossover n: {res.crossover_n}  "
          f"gap at n={max(args.sizes)}: {res.gap:.3f} [{res.gap_ci_lower:.3f}, {res.gap_ci_upper:.3f}]")
    print(res.pairs.sort_values("connection_r2", ascending=False).head(10).round(3).to_string())


if __name__ == "__main__":
    main()
