"""A seeded two-domain recommendation generator with a known oracle ranking (method note ``micrec.md``, [I]).

Generative model (every choice ours; the note gives its outline):

* user factors ``u ~ N(0, I_k)``; domain B sees them through a shift ``u^B = A u + eps``,
  ``A = I + shift * G / sqrt(k)`` with ``G ~ N(0, 1)`` and ``eps ~ N(0, 0.1^2 I)``
  (``shift = 0``: the same preferences in both domains);
* item factors ``v ~ N(0, I_k) * signal / sqrt(k)`` and a popularity bias ``b ~ N(0, pop^2)`` per item;
* interactions ``Bernoulli(sigmoid(u^d . v + b + c_d))``, the offset ``c_d`` found by bisection so
  the expected density is ``density``; the *oracle* ranks by the true logit ``u^d . v + b``;
* item modalities as noisy views of ``v``: ``text`` = bag of words of ``doc_len`` tokens drawn
  from ``softmax(W_t v + noise * eps)`` over ``vocab`` words (term frequencies), ``image`` =
  ``tanh(W_i v) + noise * eps`` (32 values);
* users: ``n_users`` per domain. Domain B's users are fixed (indices ``m .. 2m-1``); domain A has
  ``m`` users, of whom ``round(overlap * m)`` are also in B (the anchors) and the rest only in A.
  Both domains' interactions are drawn for every user from streams seeded independently of
  ``overlap``, so domain B's data are the same at every overlap and only its users' A history
  changes;
* time order is random per user (so the 80/10/10 split is a random split); domain
  ``sparse_domain`` keeps ``sparse_keep`` of its known users' training interactions; a share
  ``new_user_fraction`` of the users is held out of training (inductive tests).

Each user also gets a random binary ``group`` (g0/g1) for the fairness views.

Example
-------
>>> data = synthetic_recsys(n_users=100, n_items=60, seed=1)
>>> sorted(data.domains), data.n_users
(['A', 'B'], 200)
>>> oracle_scores(data, "A").shape
(200, 60)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_catalog.recsys import RecData, build_domain, hold_out_users

__all__ = ["oracle_scores", "synthetic_recsys"]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _offset(logits: np.ndarray, density: float) -> float:
    lo, hi = -30.0, 30.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if _sigmoid(logits + mid).mean() > density:
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


def _check(name: str, value, low: float, high: float, *, integer: bool = False) -> None:
    ok = isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and np.isfinite(value)
    if integer:
        ok = ok and float(value).is_integer()
    if not (ok and low <= value <= high):
        kind = "an integer" if integer else "a finite number"
        raise ValueError(f"synthetic_recsys: {name} must be {kind} in [{low:g}, {high:g}], got {value!r}")


def synthetic_recsys(*, n_users: int = 400, n_items: int = 200, dim: int = 8, density: float = 0.06,
                     signal: float = 3.0, pop: float = 0.5, shift: float = 0.3, overlap: float = 1.0,
                     modality_noise: float = 0.5, vocab: int = 100, doc_len: int = 40,
                     sparse_domain: str | None = "B", sparse_keep: float = 0.15, new_user_fraction: float = 0.1,
                     seed: int = 0) -> RecData:
    """Two domains (A, B) of ``n_items`` items and ``n_users`` users each; see the module docstring.

    Returns a :class:`~data_catalog.recsys.RecData` whose ``ground_truth`` holds the user factors
    per domain (``user_factors``), item factors (``item_factors``) and biases (``item_bias``),
    from which :func:`oracle_scores` ranks.
    """
    _check("n_users", n_users, 2, 1e7, integer=True)
    _check("n_items", n_items, 2, 1e7, integer=True)
    _check("dim", dim, 1, 1024, integer=True)
    _check("density", density, 1e-6, 0.9)
    _check("overlap", overlap, 0.0, 1.0)
    _check("sparse_keep", sparse_keep, 1e-6, 1.0)
    _check("modality_noise", modality_noise, 0.0, 100.0)
    _check("shift", shift, 0.0, 100.0)
    if sparse_domain not in (None, "A", "B"):
        raise ValueError(f"synthetic_recsys: sparse_domain must be 'A', 'B' or None, got {sparse_domain!r}")
    m = int(n_users)
    total = 2 * m
    shared = int(round(overlap * m))
    members = {"A": np.r_[np.arange(0, m - shared), np.arange(m, m + shared)].astype(np.int64),
               "B": np.arange(m, 2 * m, dtype=np.int64)}
    rng = np.random.default_rng([seed, 1])
    u = rng.standard_normal((total, dim))
    G = rng.standard_normal((dim, dim))
    A = np.eye(dim) + shift * G / np.sqrt(dim)
    u_b = u @ A.T + 0.1 * rng.standard_normal((total, dim))
    user_factors = {"A": u, "B": u_b}
    new_users = hold_out_users(np.arange(total), fraction=new_user_fraction, seed=seed)
    domains, item_factors, item_bias = {}, {}, {}
    for j, d in enumerate(("A", "B")):
        r = np.random.default_rng([seed, 10 + j])
        v = r.standard_normal((n_items, dim)) * signal / np.sqrt(dim)
        b = pop * r.standard_normal(n_items)
        logits = user_factors[d] @ v.T + b
        c = _offset(logits, density)
        inter = r.random(logits.shape) < _sigmoid(logits + c)
        inter[np.setdiff1d(np.arange(total), members[d])] = False
        users, items = np.nonzero(inter)
        time = r.random(len(users))
        Wt = r.standard_normal((vocab, dim)) * 1.5
        word_p = np.exp(v @ Wt.T + modality_noise * r.standard_normal((n_items, vocab)))
        word_p /= word_p.sum(1, keepdims=True)
        text = np.stack([r.multinomial(doc_len, p) for p in word_p]).astype(np.float32) / doc_len
        Wi = r.standard_normal((32, dim)) / np.sqrt(dim) * 2.0
        image = (np.tanh(v @ Wi.T) + modality_noise * r.standard_normal((n_items, 32))).astype(np.float32)
        frame = pd.DataFrame({"user": users, "item": items, "time": time})
        keep = sparse_keep if d == sparse_domain else 1.0
        domains[d] = build_domain(d, frame, n_items=n_items, new_users=new_users,
                                  item_features={"text": text, "image": image},
                                  items=pd.DataFrame({"item": np.arange(n_items)}), train_keep=keep, seed=seed)
        item_factors[d], item_bias[d] = v, b
    groups = np.where(np.random.default_rng([seed, 3]).random(total) < 0.5, "g0", "g1")
    users_table = pd.DataFrame({"token": np.arange(total), "group": groups,
                                "in_A": np.isin(np.arange(total), members["A"]),
                                "in_B": np.isin(np.arange(total), members["B"])})
    gt = {"user_factors": user_factors, "item_factors": item_factors, "item_bias": item_bias,
          "members": members, "overlap": overlap, "shared_users": shared, "sparse_domain": sparse_domain}
    return RecData(name="synthetic-recsys", n_users=total, users=users_table, domains=domains,
                   new_users=new_users, ground_truth=gt)


def oracle_scores(data: RecData, domain: str) -> np.ndarray:
    """The true logits ``u^d . v + b`` of every user and item of ``domain`` (the oracle's ranking)."""
    gt = data.ground_truth
    if "item_factors" not in gt or domain not in gt["item_factors"]:
        raise ValueError(f"dataset {data.name!r} has no oracle for domain {domain!r}")
    return gt["user_factors"][domain] @ gt["item_factors"][domain].T + gt["item_bias"][domain]
