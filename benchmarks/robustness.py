"""Robustness benchmark (issue: missing and noisy modalities). Prints:

1. The time of a robustness sweep on mfeat (6 views): 5 missing rates x (6 modalities + all) and
   5 SNRs x 6 modalities, plus all 63 presence patterns, bootstrap 500, evaluated without
   retraining (target: under 30 s on the 2-core CPU), with the accuracy table per modality.
2. One model for every subset vs a model per subset on synthetic-missing (3 modalities), paired
   over seeds, whatever the sign.

Run: ``python benchmarks/robustness.py [--seeds 3]``.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from workbench import load_dataset, train
from workbench.analyses.robustness import robustness_analysis, subset_models
from workbench.training.config import TrainConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    pd.set_option("display.width", 200)
    run = train(load_dataset("mfeat"), epochs=20, save=False, progress=False)
    t0 = time.perf_counter()
    res = robustness_analysis(run.model, run.dataset, run.splits.test, missing_rates=(0.0, 0.25, 0.5, 0.75, 1.0),
                              snr_db=(20.0, 10.0, 5.0, 0.0, -5.0), n_boot=500, progress=False)
    seconds = time.perf_counter() - t0
    n_conditions = res.curves[["perturbation", "modality", "severity"]].drop_duplicates().shape[0]
    print(f"mfeat robustness sweep: {n_conditions} conditions + {res.patterns['pattern'].nunique()} patterns, "
          f"3 metrics, 500 bootstrap resamples: {seconds:.1f} s (target < 30 s)")
    acc = res.curves.query("metric == 'accuracy'")
    print(acc.pivot_table(index=["perturbation", "modality"], columns="severity", values="value").round(3).to_string())
    table = subset_models(load_dataset("synthetic-missing", n=1200), seeds=tuple(range(args.seeds)),
                          config=TrainConfig(epochs=30, patience=5, progress=False), progress=False)
    print("\nsynthetic-missing: one model (modality dropout) vs a model per subset, test accuracy, paired over seeds")
    print(table.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
