"""Top-K recommendation metrics: full ranking in chunks, Recall@K and NDCG@K per user (numpy only).

The metrics of INMO's evaluation (Wu et al., SIGIR 2022, official code ``trainer.py``
``BasicTrainer.calculate_metrics``) and of RecBole (``recbole/evaluator/metrics.py``, classes
``Recall`` and ``NDCG``), used by MICRec (arXiv 2510.21812) with binary relevance:

* ``Recall@K = |TopK(u) ∩ Test(u)| / |Test(u)|``;
* ``NDCG@K = DCG/IDCG`` with ``DCG = sum_{r <= K} rel_r / log2(r + 1)`` and
  ``IDCG = sum_{r <= min(|Test(u)|, K)} 1 / log2(r + 1)``.

Full ranking: every item is scored for every user (``U V^T`` for inner-product models), the
user's training items (and any other excluded items, e.g. validation items when testing) are
set to ``-inf``, and the top K are kept. Only a ``chunk x n_items`` block of scores exists at a
time; the top K of a block comes from :func:`numpy.argpartition` and a sort of the K survivors.
Ties are broken towards the lower item index (a stable order; INMO's ``torch.topk`` and
RecBole's leave ties to the backend).

Users without test items have undefined metrics (NaN) and are left out of means, as both
INMO (``user_masks``) and RecBole (which evaluates only users with test items) do.

Intervals (:func:`summarize_metrics`): percentile bootstrap over users (the users are the
sampling unit: each draw resamples users with replacement and averages their per-user values).

Example
-------
>>> import numpy as np
>>> hits = hit_matrix(np.array([[3, 5, 1]]), [np.array([1, 3])])
>>> hits.tolist()
[[True, False, True]]
>>> m = recall_ndcg(hits, np.array([2]), ks=(3,))
>>> float(m["recall@3"][0]), bool(abs(m["ndcg@3"][0] - (1 + 1 / 2) / (1 + 1 / np.log2(3))) < 1e-12)
(1.0, True)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

__all__ = ["ItemSets", "as_item_sets", "bootstrap_means", "full_ranking", "hit_matrix", "ranking_metrics",
           "recall_ndcg", "summarize_metrics", "top_k_from_scores"]

LEVEL = 0.95


class ItemSets:
    """Items per user in CSR form (``indptr``, ``indices``): the training items to exclude, the test items.

    Built by :func:`as_item_sets` from a list of arrays, a ``(user, item)`` pair array, or any
    object with ``indptr``/``indices`` (a scipy CSR matrix), without importing scipy.
    """

    def __init__(self, indptr: np.ndarray, indices: np.ndarray):
        self.indptr = np.asarray(indptr, dtype=np.int64)
        self.indices = np.asarray(indices, dtype=np.int64)

    @property
    def n_users(self) -> int:
        return len(self.indptr) - 1

    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def rows(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """(row within the block, item) of every entry of users ``start..stop-1``."""
        a, b = self.indptr[start], self.indptr[stop]
        rows = np.repeat(np.arange(stop - start), np.diff(self.indptr[start : stop + 1]))
        return rows, self.indices[a:b]

    def __getitem__(self, u: int) -> np.ndarray:
        return self.indices[self.indptr[u] : self.indptr[u + 1]]


def as_item_sets(items, *, n_users: int | None = None, name: str = "items") -> ItemSets:
    """An :class:`ItemSets` from a list of per-user arrays, a CSR-like object or an ``(n, 2)`` pair array.

    Examples
    --------
    >>> s = as_item_sets([[2, 0], [], [1]])
    >>> s.indptr.tolist(), s.indices.tolist()
    ([0, 2, 2, 3], [2, 0, 1])
    >>> as_item_sets(np.array([[1, 4], [0, 2]]), n_users=2)[1].tolist()
    [4]
    """
    if isinstance(items, ItemSets):
        return items
    if hasattr(items, "indptr") and hasattr(items, "indices"):
        return ItemSets(np.asarray(items.indptr), np.asarray(items.indices))
    if isinstance(items, np.ndarray) and items.ndim == 2 and items.shape[1] == 2:
        if n_users is None:
            raise ValueError(f"{name}: a (user, item) pair array needs n_users")
        pairs = items.astype(np.int64)
        if len(pairs) and (pairs.min() < 0 or pairs[:, 0].max() >= n_users):
            raise ValueError(f"{name}: user ids must lie in [0, {n_users})")
        order = np.argsort(pairs[:, 0], kind="stable")
        counts = np.bincount(pairs[:, 0], minlength=n_users)
        return ItemSets(np.concatenate([[0], np.cumsum(counts)]), pairs[order, 1])
    lists = [np.asarray(v, dtype=np.int64).ravel() for v in items]
    indptr = np.concatenate([[0], np.cumsum([len(v) for v in lists])]).astype(np.int64)
    indices = np.concatenate(lists) if lists else np.zeros(0, dtype=np.int64)
    return ItemSets(indptr, indices.astype(np.int64))


def _top_k_block(scores: np.ndarray, k: int) -> np.ndarray:
    """Top-k columns of every row, best first; ties towards the lower column index."""
    n_items = scores.shape[1]
    k = min(k, n_items)
    if k < n_items:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(n_items), scores.shape).copy()
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -vals), axis=1)  # by score descending, then item ascending
    return np.take_along_axis(part, order, axis=1)


def top_k_from_scores(scores: np.ndarray, *, k: int, exclude=None) -> np.ndarray:
    """Top-``k`` item indices per row of a score matrix, with the ``exclude`` items of each row removed.

    Examples
    --------
    >>> top_k_from_scores(np.array([[0.1, 0.9, 0.5, 0.7]]), k=2, exclude=[[1]]).tolist()
    [[3, 2]]
    """
    scores = np.array(scores, dtype=np.float64)
    if scores.ndim != 2:
        raise ValueError(f"scores must be a (users, items) matrix, got shape {scores.shape}")
    _check_k(k)
    if exclude is not None:
        ex = as_item_sets(exclude, n_users=len(scores), name="exclude")
        if ex.n_users != len(scores):
            raise ValueError(f"exclude has {ex.n_users} users, scores has {len(scores)} rows")
        rows, items = ex.rows(0, len(scores))
        scores[rows, items] = -np.inf
    return _top_k_block(scores, k)


def full_ranking(user_vectors: np.ndarray, item_vectors: np.ndarray, *, k: int, exclude=None,
                 chunk: int = 2048, score: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
                 ) -> np.ndarray:
    """Top-``k`` items of every user by ``user_vectors @ item_vectors.T``, computed ``chunk`` users at a time.

    Parameters
    ----------
    user_vectors : (n_users, d) array
    item_vectors : (n_items, d) array
    k : int
        Length of each list (at most ``n_items``).
    exclude : item sets, optional
        Items never recommended to each user (their training items), any form
        :func:`as_item_sets` takes.
    chunk : int
        Users per block; peak memory is ``chunk x n_items`` scores.
    score : callable, optional
        ``score(user_block, item_vectors) -> (block, n_items)`` instead of the inner product.

    Returns
    -------
    (n_users, k) int64 array, best first.

    Examples
    --------
    >>> U = np.array([[1.0, 0.0], [0.0, 1.0]]); V = np.array([[1.0, 0.1], [0.2, 1.0], [0.9, 0.0]])
    >>> full_ranking(U, V, k=2, exclude=[[0], []]).tolist()
    [[2, 1], [1, 0]]
    """
    U = np.asarray(user_vectors, dtype=np.float32)
    V = np.asarray(item_vectors, dtype=np.float32)
    if U.ndim != 2 or V.ndim != 2 or U.shape[1] != V.shape[1]:
        raise ValueError(f"user_vectors {U.shape} and item_vectors {V.shape} must be (n, d) with the same d")
    _check_k(k)
    if chunk < 1:
        raise ValueError(f"chunk must be a positive integer, got {chunk}")
    ex = None if exclude is None else as_item_sets(exclude, n_users=len(U), name="exclude")
    if ex is not None and ex.n_users != len(U):
        raise ValueError(f"exclude has {ex.n_users} users, user_vectors has {len(U)}")
    k = min(k, len(V))
    out = np.empty((len(U), k), dtype=np.int64)
    VT = np.ascontiguousarray(V.T)
    for s in range(0, len(U), chunk):
        e = min(s + chunk, len(U))
        block = U[s:e] @ VT if score is None else np.asarray(score(U[s:e], V), dtype=np.float32)
        if ex is not None:
            rows, items = ex.rows(s, e)
            block[rows, items] = -np.inf
        out[s:e] = _top_k_block(block, k)
    return out


def hit_matrix(top_k: np.ndarray, test) -> np.ndarray:
    """Boolean ``(n_users, K)``: is the r-th recommended item of user u one of u's test items."""
    top_k = np.asarray(top_k, dtype=np.int64)
    te = as_item_sets(test, n_users=len(top_k), name="test")
    if te.n_users != len(top_k):
        raise ValueError(f"test has {te.n_users} users, top_k has {len(top_k)} rows")
    n_items = int(max(top_k.max(initial=0), te.indices.max(initial=0))) + 1
    users = np.repeat(np.arange(te.n_users, dtype=np.int64), te.lengths())
    test_keys = users * n_items + te.indices
    rec_keys = np.arange(len(top_k), dtype=np.int64)[:, None] * n_items + top_k
    return np.isin(rec_keys, test_keys)


def recall_ndcg(hits: np.ndarray, n_test: np.ndarray, *, ks: Sequence[int] = (10, 20)) -> dict[str, np.ndarray]:
    """Per-user ``recall@k`` and ``ndcg@k`` for every ``k`` from a hit matrix (NaN where ``n_test == 0``)."""
    hits = np.asarray(hits, dtype=bool)
    n_test = np.asarray(n_test, dtype=np.int64)
    if len(n_test) != len(hits):
        raise ValueError(f"n_test has {len(n_test)} users, hits has {len(hits)}")
    out: dict[str, np.ndarray] = {}
    discount = 1.0 / np.log2(np.arange(2, hits.shape[1] + 2))
    cum_discount = np.concatenate([[0.0], np.cumsum(discount)])
    with np.errstate(invalid="ignore", divide="ignore"):
        for k in ks:
            _check_k(k)
            if k > hits.shape[1]:
                raise ValueError(f"k = {k} exceeds the length of the lists ({hits.shape[1]})")
            h = hits[:, :k]
            recall = h.sum(1) / n_test
            dcg = (h * discount[:k]).sum(1)
            idcg = cum_discount[np.minimum(n_test, k)]
            ndcg = dcg / idcg
            empty = n_test == 0
            out[f"recall@{k}"] = np.where(empty, np.nan, recall)
            out[f"ndcg@{k}"] = np.where(empty, np.nan, ndcg)
    return out


def ranking_metrics(top_k: np.ndarray, test, *, ks: Sequence[int] = (10, 20),
                    users: np.ndarray | None = None) -> pd.DataFrame:
    """Per-user frame: ``user, n_test, recall@k, ndcg@k`` for every ``k`` (users without test items dropped).

    Examples
    --------
    >>> f = ranking_metrics(np.array([[3, 5, 1], [0, 2, 4]]), [[1, 3], []], ks=(3,))
    >>> f[["user", "n_test", "recall@3"]].values.tolist()
    [[0.0, 2.0, 1.0]]
    """
    te = as_item_sets(test, n_users=len(top_k), name="test")
    hits = hit_matrix(top_k, te)
    n_test = te.lengths()
    values = recall_ndcg(hits, n_test, ks=ks)
    frame = pd.DataFrame({"user": np.arange(len(n_test)) if users is None else np.asarray(users),
                          "n_test": n_test, **values})
    return frame[frame["n_test"] > 0].reset_index(drop=True)


def bootstrap_means(values: np.ndarray, *, n_boot: int = 1000, seed: int = 0, chunk: int = 250) -> np.ndarray:
    """``n_boot`` means of ``values`` resampled with replacement (NaNs dropped first)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return np.full(n_boot, np.nan)
    rng = np.random.default_rng(seed)
    out = np.empty(n_boot)
    for s in range(0, n_boot, chunk):
        e = min(s + chunk, n_boot)
        out[s:e] = v[rng.integers(0, len(v), size=(e - s, len(v)))].mean(1)
    return out


def summarize_metrics(per_user: pd.DataFrame, *, by: Sequence[str] = (), level: float = LEVEL,
                      n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Mean of every ``recall@k``/``ndcg@k`` column with a percentile-bootstrap interval over users.

    Returns a tidy frame ``*by, metric, k, value, value_ci_lower, value_ci_upper, n_users, level``.

    Examples
    --------
    >>> f = pd.DataFrame({"user": range(4), "n_test": 1, "recall@1": [1.0, 0.0, 1.0, 0.0]})
    >>> s = summarize_metrics(f, n_boot=200)
    >>> s[["metric", "k", "value", "n_users"]].values.tolist()
    [['recall', 1, 0.5, 4]]
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be a confidence level in (0, 1), got {level!r}")
    cols = [c for c in per_user.columns if "@" in c and c.split("@")[0] in ("recall", "ndcg")]
    if not cols:
        raise ValueError("per_user has no recall@k / ndcg@k columns")
    missing = [b for b in by if b not in per_user.columns]
    if missing:
        raise ValueError(f"per_user has no column {missing[0]!r} to group by")
    groups = per_user.groupby(list(by), sort=True, observed=True) if by else [((), per_user)]
    rows = []
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        for j, c in enumerate(cols):
            v = part[c].to_numpy(dtype=float)
            v = v[np.isfinite(v)]
            draws = bootstrap_means(v, n_boot=n_boot, seed=seed + j)
            lo, hi = (np.nan, np.nan) if len(v) == 0 else np.nanquantile(draws, [(1 - level) / 2, (1 + level) / 2])
            metric, k = c.split("@")
            rows.append({**dict(zip(by, key, strict=True)), "metric": metric, "k": int(k),
                         "value": float(v.mean()) if len(v) else np.nan, "value_ci_lower": float(lo),
                         "value_ci_upper": float(hi), "n_users": len(v), "level": level})
    return pd.DataFrame(rows)


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
