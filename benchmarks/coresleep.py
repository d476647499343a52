"""CoRe-Sleep on synthetic PSG: incomplete-data training vs complete nights only, and throughput.

The paper's claim (arXiv 2304.06485): one model trained on incomplete data (nights with both
modalities, EEG-only and EOG-only nights) serves unimodal testing, and the extra unimodal nights
help it. Per seed (data, split and model seeds equal):

- ``synthetic_psg`` nights without missingness, split by night (60% train, 20% test; the 20%
  calibration nights are not used);
- the training nights get a pattern: 30% EEG-only, 30% EOG-only, the rest both (presence mask);
- model ``incomplete`` trains on every training night with those masks; model ``complete`` on
  the both-modality training nights only (what a pipeline that drops incomplete records does);
- ablation ``complete_same_steps``: the complete-only model trained for as many optimizer steps
  as the incomplete one (more epochs), so that "more data" is not confounded with "more steps";
- with ``--no-align``, ablation ``incomplete_no_align``: the incomplete model without the
  alignment loss (``align_weight=0``);
- all are tested on the same complete test nights, given EEG only, EOG only, and both.

Reported: epoch accuracy, macro-F1 and Cohen's kappa per model and test input, and the paired
difference incomplete - complete (and - complete_same_steps) over seeds (mean and 95%
t-interval, whatever its sign).
Training throughput (sequences of 21 epochs per second, ``eval_every=0``) of the small benchmark
model, and of the paper-sized model (d 128, 8 heads, 4 + 4 layers, FF 1024, batch 16) over a few
steps with ``--full-steps``.

Usage::

    python benchmarks/coresleep.py                       # 3 seeds, small model, a few minutes on 2 cores
    python benchmarks/coresleep.py --seeds 0 1 2 3 4 --no-align --full-steps 0
    python benchmarks/coresleep.py --device cuda --full-steps 20
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import pandas as pd
import torch

from data_catalog.sleep import night_splits, synthetic_psg
from workbench.stats.intervals import t_interval
from workbench.tasks.coresleep import CoReSleepTask, predict_epochs, staging_metrics
from workbench.training.trainer import TrainConfig, Trainer, resolve_device

SMALL = dict(d_model=32, heads=4, inner_layers=1, outer_layers=1, ff=64)


def _with_patterns(ds, train_idx: np.ndarray, *, eeg_only: float, eog_only: float, seed: int):
    """The dataset with a presence mask: a share of the training nights loses EOG, another EEG."""
    nights = ds.groups["night"].to_numpy()
    train_nights = np.unique(nights[train_idx])
    order = np.random.default_rng(seed + 101).permutation(train_nights)
    n_eeg, n_eog = int(round(eeg_only * len(order))), int(round(eog_only * len(order)))
    no_eog, no_eeg = np.isin(nights, order[:n_eeg]), np.isin(nights, order[n_eeg:n_eeg + n_eog])
    ds.mask = {"eeg": torch.as_tensor(~no_eeg), "eog": torch.as_tensor(~no_eog)}
    return ds, ~(no_eeg | no_eog)


def run_seed(seed: int, args) -> tuple[list[dict], list[dict]]:
    ds = synthetic_psg(n_nights=args.nights, n_epochs=args.night_epochs, seq_len=21, seed=seed)
    splits = night_splits(ds, train=0.6, calib=0.2, seed=seed)
    ds, complete = _with_patterns(ds, splits.train, eeg_only=0.3, eog_only=0.3, seed=seed)
    rows, speed = [], []
    full = splits.train[complete[splits.train]]
    # the complete-only model sees fewer sequences, hence fewer optimizer steps per epoch; the
    # "complete_same_steps" ablation trains it for as many steps as the incomplete model takes
    same_steps = int(round(args.epochs * len(splits.train) / max(len(full), 1)))
    models = [("incomplete", splits.train, args.epochs, SMALL), ("complete", full, args.epochs, SMALL),
              ("complete_same_steps", full, same_steps, SMALL)]
    if args.no_align:  # the method's own ingredient: the alignment loss, turned off
        models.append(("incomplete_no_align", splits.train, args.epochs, dict(SMALL, align_weight=0.0)))
    for name, train_idx, epochs, params in models:
        cfg = TrainConfig(task="coresleep", task_params=params, epochs=epochs, batch_size=8, lr=1e-3,
                          weight_decay=1e-4, dropout=0.1, eval_every=0, progress=False, seed=seed,
                          device=args.device)
        trainer = Trainer(cfg).fit(ds, dataclasses.replace(splits, train=train_idx))
        seconds = float(trainer.history["seconds"].sum())
        speed.append({"seed": seed, "model": name, "train_sequences": len(train_idx),
                      "sequences_per_s": len(train_idx) * epochs / seconds})
        test = splits.test
        off = np.zeros(len(test), dtype=bool)
        for given, mask in (("eeg", {"eog": off}), ("eog", {"eeg": off}), ("both", None)):
            pred = predict_epochs(trainer.model_, ds, test, mask=mask)
            scores = staging_metrics(pred, ["eeg", "eog"])
            rows.append({"seed": seed, "model": name, "test_input": given, "accuracy": scores["fused"],
                         "macro_f1": scores["macro_f1"], "kappa": scores["kappa"], "epochs": scores["n"]})
        print(f"seed {seed} {name}: {len(train_idx)} training sequences, {seconds:.1f} s", flush=True)
    return rows, speed


def full_size_throughput(steps: int, device: torch.device, batch: int = 16) -> float:
    """Sequences per second of training steps of the paper-sized model on random inputs."""
    task = CoReSleepTask()
    model = task.build_model(shapes={"eeg": (21, 29, 128), "eog": (21, 29, 128)}, kinds={}, n_classes=5,
                             config={"dropout": 0.3}).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-4)
    g = torch.Generator().manual_seed(0)
    x = {m: torch.randn(batch, 21, 29, 128, generator=g).to(device) for m in ("eeg", "eog")}
    y = torch.randint(0, 5, (batch, 21), generator=g).to(device)

    def step():
        opt.zero_grad(set_to_none=True)
        task.loss(task.forward(model, x, None), y).backward()
        opt.step()

    step()  # warm-up (allocations, kernels)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--nights", type=int, default=20)
    parser.add_argument("--night-epochs", type=int, default=84, help="30 s epochs per night (a multiple of 21)")
    parser.add_argument("--epochs", type=int, default=8, help="training epochs per model")
    parser.add_argument("--full-steps", type=int, default=3, help="steps of the paper-sized model (0: skip)")
    parser.add_argument("--no-align", action="store_true",
                        help="also train the incomplete model without the alignment loss (ablation)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    t0 = time.perf_counter()
    rows, speed = [], []
    for seed in args.seeds:
        r, s = run_seed(seed, args)
        rows += r
        speed += s
    table = pd.DataFrame(rows)
    pd.set_option("display.width", 140)
    print(f"\nTest scores per model and test input, mean over seeds {args.seeds} (device {device}):")
    print(table.groupby(["test_input", "model"])[["accuracy", "macro_f1", "kappa"]].mean().round(3).to_string())
    wide = table.pivot_table(index=["seed", "test_input"], columns="model", values=["accuracy", "macro_f1", "kappa"])
    out = []
    for given in ("eeg", "eog", "both"):
        part = wide.xs(given, level="test_input")
        for reference in [c for c in ("complete", "complete_same_steps", "incomplete_no_align")
                          if (("accuracy", c) in part.columns)]:
            for metric in ("accuracy", "macro_f1", "kappa"):
                diff = (part[(metric, "incomplete")] - part[(metric, reference)]).to_numpy()
                mean, lo, hi = t_interval(diff, 0.95)
                out.append({"test_input": given, "against": reference, "metric": metric, "difference": mean,
                            "difference_ci_lower": lo, "difference_ci_upper": hi,
                            "seeds_won": int((diff > 0).sum()), "n_seeds": len(diff)})
    print("\nPaired difference incomplete - reference (mean, 95% t-interval over seeds):")
    print(pd.DataFrame(out).round(3).to_string(index=False))
    sp = pd.DataFrame(speed)
    print("\nTraining throughput, small model (sequences of 21 epochs / s):")
    print(sp.groupby("model")["sequences_per_s"].agg(["mean", "min", "max"]).round(2).to_string())
    if args.full_steps:
        rate = full_size_throughput(args.full_steps, device)
        print(f"\nPaper-sized model (d 128, 8 heads, 4+4 layers, FF 1024), batch 16 on {device}: "
              f"{rate:.2f} sequences/s ({rate * 21:.0f} epochs/s) over {args.full_steps} steps")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
