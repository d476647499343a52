"""Cross-modal retrieval: Recall@k and median rank, computed in chunks, with bootstrap intervals.

The evaluation of ConFu (Contrastive Fusion, arXiv 2511.21331; authors' ``src/utils/evaluation.py``):
query ``i`` and gallery item ``i`` are partners, similarity is the inner product of unit vectors
(cosine), a query is a hit at k when its partner is among its k most similar gallery items.
Ranks are counted as ``1 + #{gallery items strictly more similar than the partner}`` (ties
favour the partner, as a top-k by sort would in expectation break them arbitrarily; stated here
because it matters only for exact ties).

Only a ``chunk x n`` block of similarities exists at any time, so a gallery of 100k never builds
an ``n x n`` matrix. Intervals: percentile bootstrap over queries (``level``, default 0.95).

The ranks themselves are :func:`workbench.stats.retrieval.partner_ranks` (numpy only).

Example
-------
>>> import numpy as np
>>> q = np.eye(4); g = np.eye(4)[[0, 1, 3, 2]]     # queries 2 and 3 point at each other's partner
>>> ranks = partner_ranks(q, g)
>>> ranks.tolist()
[1, 1, 2, 2]
>>> recall_at_k(ranks, 1)
0.5
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.stats.intervals import check_level
from workbench.stats.retrieval import partner_ranks, recall_at_k, top1_among_candidates

__all__ = ["RetrievalResult", "partner_ranks", "recall_at_k", "retrieval_table", "xor_2to1_accuracy"]
from workbench.store.results import Result


@dataclass
class RetrievalResult(Result):
    """Recall@k and median rank per (query -> gallery) direction, each with a bootstrap interval.

    ``table`` columns: ``query, gallery, kind ("1->1" | "2->1"), metric ("R@1", ...,
    "median_rank"), value, value_ci_lower, value_ci_upper, n, level``.
    """

    table: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        return self.table


def retrieval_table(embeddings: dict[str, np.ndarray], pairs: dict[str, np.ndarray] | None = None, *,
                    ks: tuple[int, ...] = (1, 5, 10), level: float = 0.95, n_boot: int = 500, seed: int = 0,
                    chunk: int = 1024) -> RetrievalResult:
    """Every 1->1 direction between modalities and every fused pair -> remaining modality (2->1).

    ``embeddings``: ``modality -> (n, d)`` unit vectors; ``pairs``: ``"a+b" -> (n, d)`` fused-pair
    embeddings (optional).
    """
    check_level(level)
    rng = np.random.default_rng(seed)
    rows = []
    names = list(embeddings)
    directions = [(a, b, "1->1", embeddings[a], embeddings[b]) for a in names for b in names if a != b]
    for pair, z in (pairs or {}).items():
        for m in names:
            if m not in pair.split("+"):
                directions.append((pair, m, "2->1", z, embeddings[m]))
    for query, gallery, kind, zq, zg in directions:
        ranks = partner_ranks(zq, zg, chunk=chunk)
        boot = rng.integers(0, len(ranks), size=(n_boot, len(ranks)))
        stats = {f"R@{k}": lambda r, k=k: (r <= k).mean(-1) for k in ks}
        stats["median_rank"] = lambda r: np.median(r, -1)
        for metric, fn in stats.items():
            draws = fn(ranks[boot])
            lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
            rows.append({"query": query, "gallery": gallery, "kind": kind, "metric": metric,
                         "value": float(fn(ranks)), "value_ci_lower": float(lo), "value_ci_upper": float(hi),
                         "n": len(ranks), "level": level})
    return RetrievalResult(pd.DataFrame(rows))


def xor_2to1_accuracy(model, ds, idx: np.ndarray, *, query: str = "a+c", target: str = "b") -> float:
    """Top-1 accuracy of retrieving ``target``'s bits among all ``2^d`` candidates from the fused
    ``query`` pair, on an ``xor-trimodal`` dataset (Symile's protocol; oracle ``p + (1 - p)/2^d``).

    ``model`` is an alignment model (:class:`workbench.tasks.alignment.AlignmentModel`) trained on
    ``ds`` without a lift (the candidates are the +-1 codes themselves).
    """
    import itertools

    import torch

    d = ds.shapes[target][0]
    codes = np.array(list(itertools.product([0, 1], repeat=d)), dtype=np.float32) * 2 - 1
    idx = np.asarray(idx)
    model.eval()
    with torch.no_grad():
        out = model({m: ds.modalities[m][idx] for m in ds.modality_names})
        gallery = model({m: torch.as_tensor(codes) for m in ds.modality_names}).z[target]
    truth = (ds.modalities[target][idx].numpy() > 0).astype(int) @ (2 ** np.arange(d)[::-1])
    return top1_among_candidates(out.pairs[query].numpy(), gallery.numpy(), truth)
