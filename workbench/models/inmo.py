"""INMO (IMF, IGCN) with MICRec's modality aggregation, and the baselines MF, LightGCN and popularity.

INMO: Wu et al., "INMO: A Model-Agnostic and Scalable Module for Inductive Collaborative
Filtering", SIGIR 2022; official code github.com/WuYunfan/igcn_cf (``model.py`` IGCN/IMF,
``trainer.py`` IGCNTrainer, ``utils.py`` graph_rank_nodes). As in that code:

* template users and items: the top ``feature_ratio`` by the ``sort`` ranking (column sums of
  the row-l1-normalized bipartite adjacency);
* feature matrix ``F``: a user row has a 1 for every template item they interacted with and one
  for the user-bias column; items symmetric (template users, item-bias column); its values are
  ``c^((alpha - 1)/2 - 0.5) = c^(alpha/2 - 1)`` with ``c`` the row's count (bias included),
  ``alpha = 1`` at the start and ``alpha <- delta * alpha`` (0.99) after every epoch;
* edge dropout on ``F`` in training (entries kept with probability ``1 - dropout``, scaled by
  ``1/(1 - dropout)``); representations ``F E``; IMF scores them directly, IGCN propagates them
  with LightGCN (``D^-1/2 A D^-1/2``, degrees floored at 1, mean over layers 0..K);
* loss (trainer): ``BPR + l2_reg * mean ||reps||^2 + aux_reg * BPR_aux``, the auxiliary
  (self-enhanced) BPR scoring template users and items by raw embeddings ``e_u^T diag(w) e_i``.

Deviations, written down: templates are ranked among users/items *with training interactions*
(our user index is global, so held-out users sit in it with no edges; the official code's index
holds only training users, which is the same set); sparse products are ``torch.sparse.mm``
instead of DGL's ``gspmm``; negatives are drawn vectorised with rejection, not per sample.

Inductive fold-in (INMO's protocol): :meth:`INMO.set_graph` with the training pairs plus new
users' history rebuilds ``F`` and the adjacency with the same templates, ``alpha`` and
parameters; a new user's IMF representation is then ``c^(alpha/2-1) (sum e_i + e_bias)``.

MICRec (arXiv 2510.21812; no code public, design UNCONFIRMED, ours): ``modalities`` adds, to every
item's layer-0 representation, ``sum_m sigmoid(g_m) P_m(x_i^m)`` (a linear projector per item
modality of standardized features, a learned scalar gate ``g_m``, 0 at the start) and to every
user's the same sum mean-pooled over the items of their history.

Example
-------
>>> import numpy as np, torch
>>> pairs = np.array([[0, 0], [0, 1], [1, 1], [2, 2]])
>>> m = INMO(n_users=4, n_items=3, pairs=pairs, dim=4, n_layers=0, dropout=0.0).eval()
>>> U, V = m.reps()
>>> bool(torch.allclose(U[0], (m.embedding.weight[m.n_tu + m.item_map[0]] + m.embedding.weight[m.n_tu + m.item_map[1]]
...                              + m.embedding.weight[-2]) * 3 ** -0.5))
True
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "INMO",
    "BPRSampler",
    "LightGCN",
    "MF",
    "Popularity",
    "bpr_loss",
    "norm_adjacency",
    "sample_bpr",
]


def _sparse(rows, cols, vals, shape, device: torch.device | None = None) -> torch.Tensor:
    idx = torch.as_tensor(np.stack([rows, cols]), dtype=torch.long)
    return torch.sparse_coo_tensor(
        idx, torch.as_tensor(vals, dtype=torch.float32), shape
    ).coalesce().to(device or "cpu")


def norm_adjacency(pairs: np.ndarray, n_users: int, n_items: int,
                   device: torch.device | None = None) -> torch.Tensor:
    """LightGCN's ``D^-1/2 A D^-1/2`` of the bipartite graph (degrees floored at 1)."""
    u, i = pairs[:, 0], pairs[:, 1] + n_users
    rows, cols = np.r_[u, i], np.r_[i, u]
    n = n_users + n_items
    deg = np.maximum(np.bincount(rows, minlength=n), 1).astype(np.float64)
    return _sparse(rows, cols, deg[rows] ** -0.5 * deg[cols] ** -0.5, (n, n), device)


class _GraphModel(nn.Module):
    """A recommender whose graph tensors (sparse, not parameters) live beside its weights.

    ``nn.Module.to`` moves parameters and buffers but not the sparse graph matrices, which are
    rebuilt from the pairs on the weights' device: call :meth:`to_device`, not ``to``.
    """

    pairs: np.ndarray

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def set_graph(self, pairs: np.ndarray):
        raise NotImplementedError

    def to_device(self, device: str | torch.device):
        """Move the weights to ``device`` and rebuild the graph there (same numbers)."""
        self.to(device)
        return self.set_graph(self.pairs)


def bpr_loss(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """``mean softplus(s_neg - s_pos)``."""
    return F.softplus(neg - pos).mean()


def _propagate(adj: torch.Tensor, x: torch.Tensor, n_layers: int) -> torch.Tensor:
    layers = [x]
    for _ in range(n_layers):
        x = torch.sparse.mm(adj, x)
        layers.append(x)
    return torch.stack(layers).mean(0)


def rank_nodes(pairs: np.ndarray, n_users: int, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """INMO's ``sort`` ranking: users and items by the column sums of the row-l1-normalized adjacency."""
    deg_u = np.bincount(pairs[:, 0], minlength=n_users).astype(float)
    deg_i = np.bincount(pairs[:, 1], minlength=n_items).astype(float)
    user_metric = np.bincount(pairs[:, 0], weights=1.0 / deg_i[pairs[:, 1]], minlength=n_users)
    item_metric = np.bincount(pairs[:, 1], weights=1.0 / deg_u[pairs[:, 0]], minlength=n_items)
    ranked_u = np.argsort(user_metric)[::-1]
    ranked_i = np.argsort(item_metric)[::-1]
    return ranked_u[deg_u[ranked_u] > 0], ranked_i[deg_i[ranked_i] > 0]


class _Modalities(nn.Module):
    """MICRec's gated projectors: ``sum_m sigmoid(g_m) P_m(standardized x^m)`` per item."""

    def __init__(self, features: dict[str, np.ndarray], dim: int):
        super().__init__()
        self.names = list(features)
        for m, x in features.items():
            x = torch.as_tensor(np.asarray(x, dtype=np.float32))
            self.register_buffer(f"x_{m}", (x - x.mean(0)) / x.std(0).clamp_min(1e-6))
        self.proj = nn.ModuleDict(
            {m: nn.Linear(np.asarray(x).shape[1], dim) for m, x in features.items()}
        )
        for lin in self.proj.values():
            nn.init.normal_(lin.weight, std=0.01)
            nn.init.zeros_(lin.bias)
        self.gates = nn.Parameter(torch.zeros(len(features)))
        # modalities masked by the Shapley value function: their projector input is replaced by the
        # baseline, the features' training mean (0 after standardizing), so P_m gives its bias only
        self.masked: set[str] = set()

    def forward(self) -> torch.Tensor:
        out = 0.0
        for j, m in enumerate(self.names):
            lin = self.proj[m]
            x = getattr(self, f"x_{m}")
            p = lin.bias.expand(len(x), -1) if m in self.masked else lin(x)
            out = out + torch.sigmoid(self.gates[j]) * p
        return out


class INMO(_GraphModel):
    """IMF (``n_layers=0``) or IGCN (``n_layers > 0``), optionally with MICRec's item modalities."""

    def __init__(
        self,
        *,
        n_users: int,
        n_items: int,
        pairs: np.ndarray,
        dim: int = 64,
        n_layers: int = 3,
        dropout: float = 0.3,
        feature_ratio: float = 1.0,
        delta: float = 0.99,
        modalities: dict[str, np.ndarray] | None = None,
    ):
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        if not 0.0 < feature_ratio <= 1.0:
            raise ValueError(f"feature_ratio must be in (0, 1], got {feature_ratio!r}")
        self.n_users, self.n_items, self.n_layers, self.dropout = (
            n_users,
            n_items,
            n_layers,
            dropout,
        )
        self.alpha, self.delta = 1.0, delta
        pairs = np.asarray(pairs, dtype=np.int64)
        ru, ri = rank_nodes(pairs, n_users, n_items)
        self.template_users = ru[: int(len(ru) * feature_ratio)]
        self.template_items = ri[: int(len(ri) * feature_ratio)]
        self.user_map = {int(u): k for k, u in enumerate(self.template_users)}
        self.item_map = {int(i): k for k, i in enumerate(self.template_items)}
        self.n_tu, self.n_ti = len(self.user_map), len(self.item_map)
        self.embedding = nn.Embedding(self.n_tu + self.n_ti + 2, dim)
        nn.init.normal_(self.embedding.weight, std=0.1)
        self.w = nn.Parameter(torch.ones(dim))
        self.modal = _Modalities(modalities, dim) if modalities else None
        self.set_graph(pairs)

    # -- graph ---------------------------------------------------------------------------------
    def set_graph(self, pairs: np.ndarray) -> INMO:
        """(Re)build ``F`` and the adjacency from ``pairs``, keeping templates, alpha and parameters."""
        pairs = np.asarray(pairs, dtype=np.int64)
        self.pairs = pairs
        u_col = np.full(self.n_users, -1)
        u_col[self.template_users] = np.arange(self.n_tu)
        i_col = np.full(self.n_items, -1)
        i_col[self.template_items] = self.n_tu + np.arange(self.n_ti)
        u, i = pairs[:, 0], pairs[:, 1]
        ku, ki = i_col[i] >= 0, u_col[u] >= 0
        rows = np.r_[
            u[ku],
            self.n_users + i[ki],
            np.arange(self.n_users),
            self.n_users + np.arange(self.n_items),
        ]
        cols = np.r_[
            i_col[i[ku]],
            u_col[u[ki]],
            np.full(self.n_users, self.n_tu + self.n_ti),
            np.full(self.n_items, self.n_tu + self.n_ti + 1),
        ]
        self._f_rows, self._f_cols = rows, cols
        self._u_col, self._i_col, self._aux = (
            u_col,
            i_col,
            None,
        )  # embedding rows; aux sampler built lazily
        self.row_sum = np.bincount(rows, minlength=self.n_users + self.n_items).astype(np.float64)
        device = self.device
        self.adj = norm_adjacency(pairs, self.n_users, self.n_items, device) if self.n_layers else None
        deg = np.bincount(u, minlength=self.n_users).astype(np.float64)
        self.user_mean = _sparse(u, i, 1.0 / np.maximum(deg[u], 1), (self.n_users, self.n_items), device)
        self.update_feat()
        return self

    def update_feat(self) -> None:
        vals = self.row_sum[self._f_rows] ** ((self.alpha - 1.0) / 2.0 - 0.5)
        self.feat = _sparse(
            self._f_rows,
            self._f_cols,
            vals,
            (self.n_users + self.n_items, self.n_tu + self.n_ti + 2),
            self.device,
        )

    def on_epoch_end(self) -> None:
        """INMO's ``feat_mat_anneal``: ``alpha <- delta * alpha``."""
        self.alpha *= self.delta
        self.update_feat()

    # -- representations -----------------------------------------------------------------------
    def _dropped_feat(self) -> torch.Tensor:
        if not self.training or self.dropout == 0:
            return self.feat
        keep = torch.rand(self.feat._nnz(), device=self.feat.device) >= self.dropout
        idx, val = self.feat.indices()[:, keep], self.feat.values()[keep] / (1 - self.dropout)
        return torch.sparse_coo_tensor(idx, val, self.feat.shape).coalesce()

    def reps(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(users (n_users, d), items (n_items, d))`` representations."""
        x = torch.sparse.mm(self._dropped_feat(), self.embedding.weight)
        if self.modal is not None:
            m = self.modal()
            x = x + torch.cat([torch.sparse.mm(self.user_mean, m), m])
        if self.n_layers:
            x = _propagate(self.adj, x, self.n_layers)
        return x[: self.n_users], x[self.n_users :]

    def aux_loss(self, n: int, rng: np.random.Generator) -> torch.Tensor:
        """The self-enhanced BPR on template users and items (raw embeddings, diagonal weight ``w``)."""
        if self._aux is None:
            keep = np.isin(self.pairs[:, 0], self.template_users) & np.isin(
                self.pairs[:, 1], self.template_items
            )
            tp = self.pairs[keep]
            self._aux = (
                BPRSampler(tp, self.n_items, items=self.template_items) if len(tp) else False
            )
        e = self.embedding.weight
        if self._aux is False:
            return torch.zeros((), device=e.device)
        users, pos, neg = self._aux(n, rng)
        cu = torch.as_tensor(self._u_col[users], device=e.device)
        ci = torch.as_tensor(self._i_col[pos], device=e.device)
        cj = torch.as_tensor(self._i_col[neg], device=e.device)
        return bpr_loss((e[cu] * e[ci] * self.w).sum(1), (e[cu] * e[cj] * self.w).sum(1))


class MF(_GraphModel):
    """BPR-MF (the official code's ``MF``: embeddings ``N(0, 0.1^2)``, l2 on raw embeddings)."""

    def __init__(
        self, *, n_users: int, n_items: int, pairs: np.ndarray | None = None, dim: int = 64, **_
    ):
        super().__init__()
        self.n_users, self.n_items = n_users, n_items
        self.user = nn.Embedding(n_users, dim)
        self.item = nn.Embedding(n_items, dim)
        nn.init.normal_(self.user.weight, std=0.1)
        nn.init.normal_(self.item.weight, std=0.1)
        self.pairs = pairs

    def set_graph(self, pairs: np.ndarray):
        self.pairs = pairs
        return self

    def reps(self):
        return self.user.weight, self.item.weight

    def raw(self):
        return self.user.weight, self.item.weight

    def on_epoch_end(self) -> None:
        pass


class LightGCN(MF):
    """LightGCN (He et al., SIGIR 2020) as in the official INMO code: mean of layers 0..K, l2 on raw embeddings."""

    def __init__(
        self,
        *,
        n_users: int,
        n_items: int,
        pairs: np.ndarray,
        dim: int = 64,
        n_layers: int = 3,
        **_,
    ):
        super().__init__(n_users=n_users, n_items=n_items, pairs=pairs, dim=dim)
        self.n_layers = n_layers
        self.set_graph(pairs)

    def set_graph(self, pairs: np.ndarray):
        self.pairs = np.asarray(pairs, dtype=np.int64)
        self.adj = norm_adjacency(self.pairs, self.n_users, self.n_items, self.device)
        return self

    def reps(self):
        x = _propagate(self.adj, torch.cat([self.user.weight, self.item.weight]), self.n_layers)
        return x[: self.n_users], x[self.n_users :]


class Popularity:
    """Scores every item by its number of training interactions (the same list for every user)."""

    def __init__(self, *, n_users: int, n_items: int, pairs: np.ndarray, **_):
        self.n_users, self.n_items = n_users, n_items
        self.counts = np.bincount(np.asarray(pairs)[:, 1], minlength=n_items).astype(np.float32)

    def set_graph(self, pairs: np.ndarray):
        return self

    def score_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        # inner product of a constant user vector with the counts: one column
        return np.ones((self.n_users, 1), dtype=np.float32), self.counts[:, None]


class BPRSampler:
    """INMO's sampler over fixed ``pairs``: a user uniformly among users with interactions, one of their
    items, a negative drawn uniformly (from ``items`` if given) until it is not one of theirs
    (vectorised rejection, at most 50 rounds). The sorted structures are built once; membership is a
    binary search in the sorted ``user * n_items + item`` keys."""

    def __init__(self, pairs: np.ndarray, n_items: int, items: np.ndarray | None = None):
        pairs = np.asarray(pairs, dtype=np.int64)
        order = np.argsort(pairs[:, 0], kind="stable")
        self.p = pairs[order]
        self.users_all, self.start, self.count = np.unique(
            self.p[:, 0], return_index=True, return_counts=True
        )
        self.n_items = n_items
        self.keys = np.unique(self.p[:, 0] * n_items + self.p[:, 1])
        self.pool = np.arange(n_items) if items is None else np.asarray(items)

    def _member(self, keys: np.ndarray) -> np.ndarray:
        pos = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        return self.keys[pos] == keys

    def __call__(
        self, n: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        k = rng.integers(0, len(self.users_all), n)
        users = self.users_all[k]
        pos = self.p[self.start[k] + (rng.random(n) * self.count[k]).astype(np.int64), 1]
        neg = self.pool[rng.integers(0, len(self.pool), n)]
        for _ in range(50):
            bad = self._member(users * self.n_items + neg)
            if not bad.any():
                break
            neg[bad] = self.pool[rng.integers(0, len(self.pool), int(bad.sum()))]
        return users, pos, neg


def sample_bpr(
    pairs: np.ndarray,
    n_items: int,
    n: int,
    rng: np.random.Generator,
    items: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` (user, positive, negative) triples of :class:`BPRSampler` (built for this one call)."""
    return BPRSampler(pairs, n_items, items)(n, rng)
