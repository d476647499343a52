"""Faults on the raw sleep signals before the STFT: a small CoRe-Sleep model, evaluated told nothing,
told the flat epochs, or told what CoRe-Sleep's std rule rejects (README, "CoRe-Sleep and sleep data").

    python benchmarks/sleep_faults.py [--nights 12] [--epochs 8] [--seed 0]

Prints the accuracy table (value and 95% bootstrap interval over test sequences) and the share of
epochs the std rule masked, then the time taken.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from data_catalog.sleep import night_splits, psg_signals, synthetic_psg
from workbench.analyses.robustness import robustness_analysis
from workbench.training.trainer import TrainConfig, Trainer

FAULTS = [{"kind": "electrode_pop", "amplitude": 20.0, "tau": 2.0}, {"kind": "flat_line"},
          {"kind": "motion", "amplitude": 10.0, "duration": 5.0}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nights", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-boot", type=int, default=200)
    args = parser.parse_args()
    start = time.perf_counter()
    ds = synthetic_psg(n_nights=args.nights, n_epochs=84, seed=args.seed, keep_raw=True)
    splits = night_splits(ds, seed=args.seed)
    cfg = TrainConfig(task="coresleep", task_params=dict(d_model=32, heads=4, inner_layers=1, outer_layers=1, ff=64),
                      epochs=args.epochs, batch_size=8, lr=1e-3, dropout=0.1, seed=args.seed, progress=False)
    model = Trainer(cfg).fit(ds, splits).model_
    trained = time.perf_counter()
    res = robustness_analysis(model, ds, splits.test, missing_rates=(0.0,), snr_db=(), n_boot=args.n_boot,
                              signal_faults=FAULTS, raw=psg_signals(ds), fault_rates=(0.0, 0.5, 1.0),
                              fault_masks=("none", "true", "std_rule"), progress=True)
    table = res.curves.query("metric == 'accuracy' and perturbation == 'fault'")
    cols = ["fault", "modality", "severity", "masking", "value", "value_ci_lower", "value_ci_upper", "masked_share"]
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        print(table[cols].round(3).to_string(index=False))
        print(res.patterns.query("metric == 'accuracy'")[["pattern", "value"]].round(3).to_string(index=False))
    print(f"{len(splits.test)} test sequences; training {trained - start:.1f} s, "
          f"{len(table)} fault conditions {time.perf_counter() - trained:.1f} s")


if __name__ == "__main__":
    main()
