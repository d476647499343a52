"""Recall@K / NDCG@K: the hand example, RecBole's own formulas, INMO's, full ranking and bootstrap coverage."""

from __future__ import annotations

import ast
import importlib.util
import time
from pathlib import Path

import numpy as np
import pytest

from workbench.stats.ranking import (
    as_item_sets,
    full_ranking,
    hit_matrix,
    ranking_metrics,
    recall_ndcg,
    summarize_metrics,
    top_k_from_scores,
)


def test_hand_example():
    # Test = {1, 3}, TopK = [3, 5, 1]: Recall@3 = 1, NDCG@3 = (1 + 1/2) / (1 + 1/log2 3)
    f = ranking_metrics(np.array([[3, 5, 1]]), [[1, 3]], ks=(1, 2, 3))
    assert f["recall@3"][0] == 1.0
    assert f["ndcg@3"][0] == pytest.approx((1 + 1 / 2) / (1 + 1 / np.log2(3)), abs=1e-12)
    assert f["recall@1"][0] == 0.5 and f["ndcg@1"][0] == 1.0
    assert f["recall@2"][0] == 0.5 and f["ndcg@2"][0] == pytest.approx(1 / (1 + 1 / np.log2(3)))


def _recbole_metric_functions():
    """``Recall.metric_info`` and ``NDCG.metric_info`` compiled from RecBole's own source file.

    ``recbole.evaluator`` cannot be imported here (its package pulls tensorboard, and its NDCG uses
    ``np.float``, removed in numpy 2), so the two methods are taken from the installed
    ``recbole/evaluator/metrics.py`` by ``ast`` and run unchanged with ``np.float`` mapped to ``float``.
    """
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("recbole is not installed (pip install --no-deps recbole==1.2.1)")
    path = Path(list(spec.submodule_search_locations)[0]) / "evaluator" / "metrics.py"
    tree = ast.parse(path.read_text())
    funcs = {}

    class _NP:
        def __getattr__(self, name):
            return float if name == "float" else getattr(np, name)

    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name in ("Recall", "NDCG"):
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "metric_info":
                    mod = ast.Module(body=[item], type_ignores=[])
                    ns = {"np": _NP()}
                    exec(compile(mod, str(path), "exec"), ns)
                    funcs[node.name] = ns["metric_info"]
    assert set(funcs) == {"Recall", "NDCG"}
    return funcs


def test_equals_recbole_formulas():
    funcs = _recbole_metric_functions()
    rng = np.random.default_rng(3)
    n_users, n_items, K = 300, 60, 20
    scores = rng.normal(size=(n_users, n_items))
    train = [rng.choice(n_items, size=rng.integers(0, 10), replace=False) for _ in range(n_users)]
    test = []
    for u in range(n_users):
        rest = np.setdiff1d(np.arange(n_items), train[u])
        test.append(rng.choice(rest, size=rng.integers(1, 30), replace=False))
    top = top_k_from_scores(scores, k=K, exclude=train)
    hits = hit_matrix(top, test)
    pos_len = np.array([len(t) for t in test])
    ours = recall_ndcg(hits, pos_len, ks=range(1, K + 1))
    rec = funcs["Recall"](None, hits, pos_len)
    ndcg = funcs["NDCG"](None, hits, pos_len)
    for k in range(1, K + 1):
        np.testing.assert_allclose(ours[f"recall@{k}"], rec[:, k - 1], atol=1e-12)
        np.testing.assert_allclose(ours[f"ndcg@{k}"], ndcg[:, k - 1], atol=1e-12)


def test_equals_inmo_loop():
    # INMO's BasicTrainer.calculate_metrics, written as its loops (per user, per position)
    rng = np.random.default_rng(1)
    top = np.stack([rng.permutation(40)[:20] for _ in range(50)])
    test = [rng.choice(40, size=rng.integers(1, 25), replace=False) for _ in range(50)]
    ours = recall_ndcg(hit_matrix(top, test), np.array([len(t) for t in test]), ks=(10, 20))
    for k in (10, 20):
        for u in range(50):
            hit = np.array([top[u, r] in set(test[u]) for r in range(k)], dtype=float)
            denom = np.log2(np.arange(2, k + 2))
            idcg = (1.0 / denom[: min(len(test[u]), k)]).sum()
            assert ours[f"recall@{k}"][u] == pytest.approx(hit.sum() / len(test[u]))
            assert ours[f"ndcg@{k}"][u] == pytest.approx((hit / denom).sum() / idcg)


def test_full_ranking_matches_dense_and_excludes_training():
    rng = np.random.default_rng(0)
    U, V = rng.normal(size=(257, 8)), rng.normal(size=(90, 8))
    train = [rng.choice(90, size=5, replace=False) for _ in range(257)]
    chunked = full_ranking(U, V, k=15, exclude=train, chunk=64)
    dense = top_k_from_scores((U.astype(np.float32) @ V.astype(np.float32).T), k=15, exclude=train)
    np.testing.assert_array_equal(chunked, dense)
    for u in range(257):
        assert not set(chunked[u]) & set(train[u])
        s = U[u] @ V.T
        s[train[u]] = -np.inf
        np.testing.assert_array_equal(np.sort(chunked[u]), np.sort(np.argsort(-s)[:15]))


def test_item_set_forms_agree():
    pairs = np.array([[0, 3], [2, 1], [0, 5]])
    a = as_item_sets(pairs, n_users=3)
    b = as_item_sets([[3, 5], [], [1]])
    assert a.indptr.tolist() == b.indptr.tolist() and a.indices.tolist() == b.indices.tolist()


def test_bad_inputs():
    with pytest.raises(ValueError, match="k must be"):
        full_ranking(np.ones((2, 2)), np.ones((3, 2)), k=0)
    with pytest.raises(ValueError, match="same d"):
        full_ranking(np.ones((2, 2)), np.ones((3, 3)), k=1)
    with pytest.raises(ValueError, match="exclude has 1 users"):
        full_ranking(np.ones((2, 2)), np.ones((3, 2)), k=1, exclude=[[0]])
    with pytest.raises(ValueError, match="level"):
        summarize_metrics(ranking_metrics(np.array([[0]]), [[0]], ks=(1,)), level=95)


def test_bootstrap_interval_coverage():
    # per-user Recall@1 values of 0/1 with a known mean 0.3: the 95% interval covers it ~95% of the time
    rng = np.random.default_rng(11)
    cover = []
    for rep in range(200):
        v = (rng.random(150) < 0.3).astype(float)
        f = ranking_metrics(np.zeros((150, 1), dtype=int), [[0] if x else [1] for x in v], ks=(1,))
        s = summarize_metrics(f, n_boot=300, seed=rep)
        cover.append(s["value_ci_lower"][0] <= 0.3 <= s["value_ci_upper"][0])
    assert 0.90 <= np.mean(cover) <= 0.985


def test_full_ranking_speed_ml1m_size():
    # ml-1m size (6,040 x 3,706, d = 64): full ranking with exclusion well under 2 s on 2 cores
    rng = np.random.default_rng(0)
    U, V = rng.normal(size=(6040, 64)).astype(np.float32), rng.normal(size=(3706, 64)).astype(np.float32)
    train = as_item_sets(np.stack([rng.integers(0, 6040, 500_000), rng.integers(0, 3706, 500_000)], 1),
                         n_users=6040)
    t0 = time.perf_counter()
    top = full_ranking(U, V, k=20, exclude=train)
    assert top.shape == (6040, 20)
    assert time.perf_counter() - t0 < 4.0  # benchmarks/ranking_eval.py measures the figure itself
