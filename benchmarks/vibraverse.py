"""VibraVerse / CLASP benchmarks (issue 20). Prints three tables:

1. Generation rate: objects per second of :func:`data_catalog.vibraverse.vibraverse` (1 s at
   22.05 kHz, log-mel): the analytic plates and bars (``--n-gen`` objects), the analytic membrane, and
   the four FEM families over all seven materials (``--n-fem`` objects, first with a cold eigen-solve
   cache, then warm), and the CLASP training throughput.
2. CLASP (CLIP-style symmetric InfoNCE over shape, image, sound; the alignment task at lam = 0):
   Recall@{1,5,10} per direction, mean over ``--seeds`` training seeds with t-intervals, and
   chance k / n_test, with the hit position random ("hit on") and fixed ("hit off").
3. Material probes: accuracy from each aligned embedding and from the raw log-mel mean over time.
   Also the training throughput (objects per second of training).

Run: ``python benchmarks/vibraverse.py [--n 1500] [--seeds 3] [--epochs 15] [--n-gen 3000]``.
Numbers are from the machine it runs on; the README quotes a 2-core CPU run. The throughput table
gives wall seconds and the process's CPU seconds (``time.process_time``): on a shared machine the
wall clock measures the load, the CPU time (one thread with ``OMP_NUM_THREADS=1``) the work.
"""

from __future__ import annotations

import argparse
import time
from contextlib import contextmanager

import pandas as pd

from data_catalog.vibraverse import vibraverse
from workbench.analyses.clasp import clasp_analysis


@contextmanager
def clock(out: list):
    """Append ``(wall seconds, CPU seconds)`` of the block to ``out``."""
    w, c = time.perf_counter(), time.process_time()
    yield
    out.append((time.perf_counter() - w, time.process_time() - c))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1500)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--n-gen", type=int, default=3000)
    p.add_argument("--n-fem", type=int, default=300, help="FEM objects (box, lshape, holed_plate, ball)")
    args = p.parse_args()
    pd.set_option("display.width", 160)

    speed, times = [], []  # (what, objects, note), (wall, cpu)
    with clock(times):
        vibraverse(n=args.n_gen, seed=123)
    speed.append(("generate: plate + bar (analytic)", args.n_gen, ""))
    print(f"generation: {args.n_gen} objects in {times[-1][0]:.1f} s = {args.n_gen / times[-1][0]:.0f} objects/s")
    with clock(times):
        vibraverse(n=args.n_gen // 3, seed=124, families=["membrane"])
    speed.append(("generate: membrane (analytic)", args.n_gen // 3, ""))

    from data_catalog.vibraverse import _FEM_CACHE, FEM_TEMPLATES

    fem = tuple(FEM_TEMPLATES)
    with clock(times):
        vibraverse(n=args.n_fem, seed=7, families=fem)
    cold = times[-1][0]
    n_solves = len(_FEM_CACHE)
    with clock(times):
        vibraverse(n=args.n_fem, seed=8, families=fem)
    warm = times[-1][0]
    speed.append(("generate: FEM, cold cache", args.n_fem, f"{n_solves} eigen-solves included"))
    speed.append(("generate: FEM, warm cache", args.n_fem, f"{len(_FEM_CACHE)} solves cached"))
    print(f"FEM generation: {args.n_fem} objects in {cold:.1f} s with {n_solves} cached eigen-solves "
          f"({cold / max(n_solves, 1):.2f} s each at most); again with the cache warm ({len(_FEM_CACHE)} solves "
          f"in all): {args.n_fem / warm:.0f} objects/s")

    rows, probes = [], []
    for hit in (True, False):
        ds = vibraverse(n=args.n, seed=0, hit_position=hit)
        label = "hit on" if hit else "hit off"
        with clock(times):
            res = clasp_analysis(ds, seeds=tuple(range(args.seeds)), epochs=args.epochs, label=label)
        dt = times[-1][0]
        # 60% of the objects train; each epoch sees them once (evaluation time included)
        speed.append((f"CLASP training ({label})", int(0.6 * args.n) * args.epochs * args.seeds,
                      f"{args.seeds} seeds x {args.epochs} epochs, evaluation included"))
        print(f"{label}: {args.seeds} runs x {args.epochs} epochs in {dt:.1f} s = "
              f"{0.6 * args.n * args.epochs * args.seeds / dt:.0f} training objects/s")
        s = res.summary.assign(condition=label)
        rows.append(s[s["kind"] == "retrieval"])
        probes.append(s[s["kind"] == "probe"])
    cols = ["condition", "name", "value", "value_ci_lower", "value_ci_upper", "chance", "n_seeds"]
    table = pd.concat(rows)
    print("\nCLASP retrieval (mean over seeds, 95% t-interval):")
    print(table[cols].round(3).to_string(index=False))
    print("\nMaterial probes (test accuracy; chance = majority class):")
    print(pd.concat(probes)[cols].round(3).to_string(index=False))
    table = pd.DataFrame(speed, columns=["what", "objects", "note"])
    table["wall_s"], table["cpu_s"] = zip(*times, strict=True)
    table["per_wall_s"] = table["objects"] / table["wall_s"]
    table["per_cpu_s"] = table["objects"] / table["cpu_s"]
    print("\nThroughput (objects per second of wall and of CPU time; training: training objects x epochs):")
    print(table[["what", "objects", "wall_s", "cpu_s", "per_wall_s", "per_cpu_s", "note"]].round(1)
          .to_string(index=False))


if __name__ == "__main__":
    main()
