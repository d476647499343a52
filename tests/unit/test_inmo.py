"""INMO's inductive identity, its sampler and templates, and the synthetic ranking benchmarks that hold."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from data_catalog.synthetic_recsys import oracle_scores, synthetic_recsys
from workbench.models.inmo import INMO, rank_nodes, sample_bpr
from workbench.stats.ranking import as_item_sets, ranking_metrics, top_k_from_scores
from workbench.training.ranking import evaluate_ranking, fit_ranking


@pytest.fixture(scope="module")
def data():
    return synthetic_recsys(n_users=300, n_items=150, seed=0)


def _dense_rep(model: INMO, pairs: np.ndarray) -> np.ndarray:
    """INMO's training-time formula written densely: c^(alpha/2-1) (sum of template embeddings + bias),
    then LightGCN's mean over layers on D^-1/2 A D^-1/2."""
    E = model.embedding.weight.detach().numpy().astype(np.float64)
    nu, ni = model.n_users, model.n_items
    X = np.zeros((nu + ni, E.shape[1]))
    for u in range(nu):
        cols = [
            model.n_tu + model.item_map[int(i)]
            for i in pairs[pairs[:, 0] == u, 1]
            if int(i) in model.item_map
        ]
        X[u] = (len(cols) + 1) ** (model.alpha / 2 - 1) * (E[cols].sum(0) + E[-2])
    for i in range(ni):
        cols = [
            model.user_map[int(u)] for u in pairs[pairs[:, 1] == i, 0] if int(u) in model.user_map
        ]
        X[nu + i] = (len(cols) + 1) ** (model.alpha / 2 - 1) * (E[cols].sum(0) + E[-1])
    if model.n_layers:
        A = np.zeros((nu + ni, nu + ni))
        A[pairs[:, 0], nu + pairs[:, 1]] = 1
        A[nu + pairs[:, 1], pairs[:, 0]] = 1
        d = np.maximum(A.sum(1), 1) ** -0.5
        A = d[:, None] * A * d[None, :]
        layers, x = [X], X
        for _ in range(model.n_layers):
            x = A @ x
            layers.append(x)
        X = np.mean(layers, 0)
    return X


@pytest.mark.parametrize("n_layers", [0, 2])
def test_inductive_identity(data, n_layers):
    dom = data.domains["A"]
    fit = fit_ranking(
        data,
        model="igcn" if n_layers else "imf",
        domains=["A"],
        epochs=3,
        batch_size=256,
        lr=1e-2,
        n_layers=n_layers,
        progress=False,
    )
    m = fit.models["A"]
    assert m.alpha == pytest.approx(0.99**3)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    both = np.concatenate([dom.train, dom.fold_in])
    m.set_graph(both)
    with torch.no_grad():
        U, V = m.reps()
    ref = _dense_rep(m, both)
    new = data.new_users[np.isin(data.new_users, dom.fold_in[:, 0])]
    assert len(new) > 10
    np.testing.assert_allclose(U.numpy()[new], ref[new], atol=1e-5)
    np.testing.assert_allclose(V.numpy(), ref[m.n_users :], atol=1e-5)
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())  # no parameter changed
    # a new user is not a template (templates come from training users only)
    assert not np.isin(m.template_users, data.new_users).any()


def test_sampler_and_templates():
    pairs = np.array([[0, 0], [0, 1], [1, 1], [2, 2], [2, 0]])
    u, i, j = sample_bpr(pairs, 4, 2000, np.random.default_rng(0))
    keys = set(map(tuple, pairs))
    assert all((a, b) in keys for a, b in zip(u, i, strict=True))
    assert not any((a, b) in keys for a, b in zip(u, j, strict=True))
    assert np.bincount(u, minlength=3).min() > 550  # users uniform, as INMO's dataset samples them
    ru, ri = rank_nodes(pairs, 4, 4)
    assert 3 not in ru and 3 not in ri  # no-interaction nodes are never templates


def _oracle_recall(data, d):
    dom = data.domains[d]
    known = ~np.isin(dom.test[:, 0], data.new_users)
    top = top_k_from_scores(
        oracle_scores(data, d),
        k=20,
        exclude=as_item_sets(np.concatenate([dom.train, dom.valid]), n_users=data.n_users),
    )
    return ranking_metrics(top, as_item_sets(dom.test[known], n_users=data.n_users))[
        "recall@20"
    ].mean()


def test_oracle_best_and_micrec_beats_popularity(data):
    oracle = _oracle_recall(data, "A")
    scores = {}
    for model in ("popularity", "mf", "micrec"):
        fit = fit_ranking(
            data,
            model=model,
            domains=["A"],
            epochs=30,
            batch_size=512,
            lr=1e-2,
            n_layers=0,
            progress=False,
        )
        scores[model] = evaluate_ranking(fit, data)["recall@20"].mean()
    assert oracle > max(scores.values())
    assert scores["micrec"] > scores["popularity"] + 0.1
    assert scores["micrec"] > scores["mf"]
    # a cheap regression check (30 fixed epochs, one domain): 0.46 of an oracle 0.87; the 0.7x target is
    # measured with early stopping over 3 seeds in benchmarks/micrec_synthetic.py (0.77x)
    assert scores["micrec"] > 0.45 * oracle


def test_bad_arguments(data):
    with pytest.raises(ValueError, match="model must be one of"):
        fit_ranking(data, model="nope")
    with pytest.raises(ValueError, match="anchors=True needs exactly two domains"):
        fit_ranking(data, model="mf", domains=["A"], anchors=True)
    with pytest.raises(ValueError, match="domains: 'C'"):
        fit_ranking(data, model="mf", domains=["C"])
