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

From a run (:func:`retrieval_analysis`): the table above, an embedding map (a 2-D PCA of the
unit embeddings of every modality, partners joined) and linear probes (scikit-learn logistic
regression fitted on the training split's ``z_m``, ``z_ij`` and ``[z_i || z_j]``, scored on the
evaluated split with Wilson intervals), as the authors' evaluation does.

Which modality matters for retrieval (:func:`retrieval_shapley`, our definition): the players
are the modalities other than the ``target`` gallery. The value of coalition ``S`` for query
``i`` is the log-probability that the model's own retrieval distribution (softmax of the
similarities over the gallery at the task's temperature, the InfoNCE distribution) puts on the
true partner, ``log p_S(i) = <e_S(i), z_t(i)>/tau - logsumexp_j <e_S(i), z_t(j)>/tau``, minus
that of the empty coalition, which retrieves uniformly (``log 1/n``). ``e_S`` is the coalition's
fused embedding: ``z_m`` for one modality; for two, the fused-pair embedding ``z_ij`` when the
model has that head (ConFu), else ``normalize(z_i + z_j)``; for more, the normalized sum of its
pairs' fused embeddings (ConFu defines fused embeddings for pairs only: this extension is ours).
The gallery is every calibration and test item, so calibration and test values are computed
alike and stay exchangeable; the intervals are the Shapley analysis's own
(:func:`workbench.analyses.shapley.interval_tables`: marginal conformal, t, conditional on PCA
features of the embeddings).

The XOR curve (:func:`xor_curve`): 2->1 top-1 among the ``2^d`` candidates against the mixing
rate ``p`` for ConFu and CLIP over seeds, with t-intervals, the paired difference per ``p`` and
the Bayes oracle ``p + (1 - p)/2^d``.

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

import itertools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from workbench.stats.intervals import check_level, percentile_interval, t_interval, wilson_interval
from workbench.stats.retrieval import partner_ranks, recall_at_k, top1_among_candidates
from workbench.store.results import Result

__all__ = ["RetrievalResult", "XorCurveResult", "embedding_map", "fused_gain_table", "linear_probes", "partner_ranks", "recall_at_k",
           "retrieval_analysis", "retrieval_shapley", "retrieval_table", "xor_2to1_accuracy", "xor_curve"]


@dataclass
class RetrievalResult(Result):
    """Recall@k and median rank per (query -> gallery) direction, each with a bootstrap interval.

    ``table`` columns: ``query, gallery, kind ("1->1" | "2->1"), metric ("R@1", ...,
    "median_rank"), value, value_ci_lower, value_ci_upper, n, level``.
    ``points`` (from :func:`retrieval_analysis`): the embedding map, ``sample, modality, label,
    x, y`` (empty when not computed). ``probes``: linear-probe accuracy per representation,
    ``representation, kind, accuracy, accuracy_ci_lower, accuracy_ci_upper, n_train, n, level``
    (empty without labels). ``gains``: per 2->1 direction, its Recall@k minus that of the better of
    the pair's two modalities alone towards the same gallery, paired over queries
    (:func:`fused_gain_table`).
    """

    table: pd.DataFrame
    points: pd.DataFrame = field(default_factory=pd.DataFrame)
    probes: pd.DataFrame = field(default_factory=pd.DataFrame)
    gains: pd.DataFrame = field(default_factory=pd.DataFrame)
    split: str = "test"

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
            lo, hi = percentile_interval(draws, level)
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


def fused_gain_table(embeddings: dict[str, np.ndarray], pairs: dict[str, np.ndarray], *, k: int = 10,
                     level: float = 0.95, n_boot: int = 1000, seed: int = 0, chunk: int = 1024) -> pd.DataFrame:
    """Does the fused pair retrieve better than its best member? Per direction ``i+j -> t``:
    ``gain = R@k(z_ij -> z_t) - max(R@k(z_i -> z_t), R@k(z_j -> z_t))`` (the better member chosen on
    the same queries), with a paired percentile-bootstrap interval over queries (the member is
    re-chosen in every resample, so the interval includes the selection).

    Examples
    --------
    >>> e = np.eye(6)
    >>> t = fused_gain_table({"a": e, "b": e[::-1], "c": e}, {"a+b": e}, k=1, n_boot=20)
    >>> t[["query", "gallery", "best_single", "gain"]].values.tolist()
    [['a+b', 'c', 'a', 0.0]]
    """
    check_level(level)
    rng = np.random.default_rng(seed)
    rows = []
    for pair, zq in pairs.items():
        members = pair.split("+")
        for target in [m for m in embeddings if m not in members]:
            fused = partner_ranks(zq, embeddings[target], chunk=chunk) <= k
            singles = np.stack([partner_ranks(embeddings[m], embeddings[target], chunk=chunk) <= k for m in members])
            boot = rng.integers(0, len(fused), size=(n_boot, len(fused)))
            draws = fused[boot].mean(1) - singles[:, boot].mean(2).max(0)
            lo, hi = percentile_interval(draws, level)
            best = int(singles.mean(1).argmax())
            rows.append({"query": pair, "gallery": target, "metric": f"R@{k}", "fused": float(fused.mean()),
                         "best_single": members[best], "single": float(singles[best].mean()),
                         "gain": float(fused.mean() - singles[best].mean()), "gain_ci_lower": float(lo),
                         "gain_ci_upper": float(hi), "n": len(fused), "level": level})
    return pd.DataFrame(rows)


# -- from a run: map, probes ----------------------------------------------------------------------
def _split_embeddings(run, split: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], pd.DataFrame]:
    from workbench.tasks.alignment import embeddings_from_frame

    if run.config.get("train", {}).get("task") != "alignment":
        raise ValueError(f"run {run.run_id!r} was trained for task {run.config.get('train', {}).get('task')!r}, "
                         "not 'alignment': retrieval needs an alignment run")
    frame = run.predictions[run.predictions["split"] == split]
    if frame.empty:
        have = sorted(run.predictions["split"].unique())
        raise ValueError(f"run {run.run_id!r} has no {split!r} split (it has {have})")
    z = embeddings_from_frame(frame)
    return ({m: v for m, v in z.items() if "+" not in m}, {m: v for m, v in z.items() if "+" in m},
            frame)


def embedding_map(embeddings: dict[str, np.ndarray], labels: np.ndarray | None = None, *,
                  samples: np.ndarray | None = None, n_points: int = 300, seed: int = 0) -> pd.DataFrame:
    """2-D PCA of the unit embeddings of every modality together (one shared sphere), for at most
    ``n_points`` items (a seeded subsample; the same items in every modality so partners can be
    joined): ``sample, modality, label, x, y``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> pts = embedding_map({"a": rng.normal(size=(50, 4)), "b": rng.normal(size=(50, 4))}, n_points=10)
    >>> pts.shape, sorted(pts["modality"].unique())
    ((20, 5), ['a', 'b'])
    """
    names = list(embeddings)
    n = len(next(iter(embeddings.values())))
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(n, size=min(n_points, n), replace=False))
    stacked = np.concatenate([np.asarray(embeddings[m], dtype=np.float64)[keep] for m in names])
    centred = stacked - stacked.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    xy = centred @ vt[:2].T if vt.shape[0] >= 2 else np.c_[centred @ vt[:1].T, np.zeros(len(centred))]
    samples = np.arange(n) if samples is None else np.asarray(samples)
    return pd.DataFrame({
        "sample": np.tile(samples[keep], len(names)), "modality": np.repeat(names, len(keep)),
        "label": np.tile(np.asarray(labels)[keep], len(names)) if labels is not None else "",
        "x": xy[:, 0], "y": xy[:, 1]})


def linear_probes(train: dict[str, np.ndarray], y_train: np.ndarray, test: dict[str, np.ndarray],
                  y_test: np.ndarray, *, level: float = 0.95, max_iter: int = 2000) -> pd.DataFrame:
    """Logistic-regression probes (scikit-learn, default L2, ``C = 1``) on each representation of
    ``train`` (``name -> (n, d)``; ``z_m``, fused pairs ``"a+b"``) and on every concatenation
    ``[z_i || z_j]`` of two unimodal ones (named ``"a||b"``), scored on ``test``: accuracy with a
    Wilson interval at ``level``.
    """
    from sklearn.linear_model import LogisticRegression

    check_level(level)
    singles = [m for m in train if "+" not in m]
    reps = {m: (train[m], test[m], "fused pair" if "+" in m else "modality") for m in train}
    for i, j in itertools.combinations(singles, 2):
        reps[f"{i}||{j}"] = (np.c_[train[i], train[j]], np.c_[test[i], test[j]], "concatenation")
    rows = []
    for name, (xtr, xte, kind) in reps.items():
        clf = LogisticRegression(max_iter=max_iter).fit(xtr, y_train)
        hits = int((clf.predict(xte) == np.asarray(y_test)).sum())
        lo, hi = wilson_interval(hits, len(y_test), level)
        rows.append({"representation": name, "kind": kind, "accuracy": hits / len(y_test),
                     "accuracy_ci_lower": float(lo), "accuracy_ci_upper": float(hi), "n_train": len(y_train),
                     "n": len(y_test), "level": level})
    return pd.DataFrame(rows)


def retrieval_analysis(run, *, split: str = "test", ks: tuple[int, ...] = (1, 5, 10), level: float = 0.95,
                       n_boot: int = 500, probes: bool = True, n_points: int = 300, seed: int = 0,
                       chunk: int = 1024) -> RetrievalResult:
    """Retrieval evaluation of an alignment run on ``split``: the Recall@k / median-rank table
    (every 1->1 and 2->1 direction, bootstrap intervals), the fused pairs' gains over their best
    member at the largest k, the embedding map and, when the dataset has labels with >= 2 classes
    in the training split, the linear probes.

    Works on a saved run (the embeddings are stored in its predictions).

    Examples
    --------
    >>> from workbench import load_dataset, train
    >>> run = train(load_dataset("xor-trimodal", n=400, d=2, p=1.0), task="alignment",
    ...             task_params={"dim": 8}, epochs=2, save=False, progress=False)
    >>> res = retrieval_analysis(run, n_boot=50)
    >>> sorted(res.table["kind"].unique()), "a+c" in set(res.probes["representation"])
    (['1->1', '2->1'], True)
    """
    check_level(level)
    singles, pairs, frame = _split_embeddings(run, split)
    table = retrieval_table(singles, pairs, ks=ks, level=level, n_boot=n_boot, seed=seed, chunk=chunk).table
    points = embedding_map(singles, frame["y"].to_numpy(), samples=frame["sample"].to_numpy(), n_points=n_points,
                           seed=seed)
    probe_table = pd.DataFrame()
    if probes:
        tr_singles, tr_pairs, tr_frame = _split_embeddings(run, "train")
        if tr_frame["y"].nunique() >= 2:
            probe_table = linear_probes({**tr_singles, **tr_pairs}, tr_frame["y"].to_numpy(), {**singles, **pairs},
                                        frame["y"].to_numpy(), level=level)
    gains = fused_gain_table(singles, pairs, k=max(ks), level=level, n_boot=n_boot, seed=seed, chunk=chunk) \
        if pairs else pd.DataFrame()
    return RetrievalResult(table, points, probe_table, gains, split)


# -- which modality matters for retrieval ----------------------------------------------------------
def coalition_embedding(members: list[str], singles: dict[str, np.ndarray],
                        pairs: dict[str, np.ndarray]) -> np.ndarray:
    """The fused embedding of a coalition (module docstring): ``z_m``, ``z_ij`` (or the normalized
    sum of the two), or the normalized sum of the pairs' fused embeddings."""
    def unit(v):
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

    if len(members) == 1:
        return singles[members[0]]
    found = [pairs.get(f"{i}+{j}", pairs.get(f"{j}+{i}")) for i, j in itertools.combinations(members, 2)]
    if all(f is not None for f in found):
        return unit(np.sum(found, axis=0)) if len(found) > 1 else found[0]
    return unit(np.sum([singles[m] for m in members], axis=0))


def retrieval_log_probs(queries: np.ndarray, gallery: np.ndarray, *, tau: float, chunk: int = 1024) -> np.ndarray:
    """``log softmax_j(<q_i, g_j>/tau)`` at ``j = i`` for every query, in chunks (no ``n x n`` matrix)."""
    from scipy.special import logsumexp

    queries, gallery = np.asarray(queries, dtype=np.float64), np.asarray(gallery, dtype=np.float64)
    out = np.empty(len(queries))
    for s in range(0, len(queries), chunk):
        logits = queries[s : s + chunk] @ gallery.T / tau
        out[s : s + chunk] = logits[np.arange(len(logits)), np.arange(s, s + len(logits))] - logsumexp(logits, 1)
    return out


def retrieval_shapley(run, *, target: str, alpha: float = 0.1, bonferroni: bool = False, n_pca: int = 4,
                      augmented: bool = False, level: float = 0.95):
    """Shapley values of the query modalities for retrieving ``target``'s partner, with the
    Shapley analysis's conformal intervals (value function in the module docstring).

    Returns a :class:`workbench.analyses.shapley.ShapleyResult` (``value_method="retrieval"``; its
    coalition table's ``accuracy`` is the coalition's top-1 retrieval rate, ``log_loss`` the mean
    negative log-probability of the partner; no modality-selection tables).

    Examples
    --------
    >>> from workbench import load_dataset, train
    >>> run = train(load_dataset("xor-trimodal", n=600, d=2, p=1.0), task="alignment",
    ...             task_params={"dim": 8}, epochs=2, save=False, progress=False)
    >>> res = retrieval_shapley(run, target="b")
    >>> sorted(res.modalities["modality"])
    ['a', 'c']
    """
    from workbench.analyses.shapley import (
        ShapleyResult,
        all_coalitions,
        coalition_table,
        interval_tables,
        shapley_from_values,
    )

    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    check_level(level)
    parts = [_split_embeddings(run, s) for s in ("calib", "test")]
    singles = {m: np.concatenate([p[0][m] for p in parts]) for m in parts[0][0]}
    pairs = {m: np.concatenate([p[1][m] for p in parts]) for m in parts[0][1]}
    if target not in singles:
        raise ValueError(f"target {target!r} is not a modality of run {run.run_id!r} (it has {sorted(singles)})")
    names = [m for m in singles if m != target]
    if not names:
        raise ValueError("retrieval Shapley needs at least one query modality besides the target")
    split_of = np.r_[np.full(len(parts[0][2]), "calib"), np.full(len(parts[1][2]), "test")].astype(object)
    idx = np.r_[parts[0][2]["sample"].to_numpy(), parts[1][2]["sample"].to_numpy()]
    y = np.r_[parts[0][2]["y"].to_numpy(), parts[1][2]["y"].to_numpy()]
    tau = float(run.config["train"].get("task_params", {}).get("tau", 0.07))
    coalitions = all_coalitions(len(names))
    n = len(idx)
    logp = np.full((n, len(coalitions)), -np.log(n))
    hits = np.zeros((n, len(coalitions)), dtype=bool)  # the empty coalition retrieves nothing
    for k, members in enumerate(coalitions):
        chosen = [m for m, b in zip(names, members, strict=True) if b]
        if chosen:
            e = coalition_embedding(chosen, singles, pairs)
            logp[:, k] = retrieval_log_probs(e, singles[target], tau=tau)
            hits[:, k] = partner_ranks(e, singles[target]) == 1
    values = logp - logp[:, :1]
    phi = shapley_from_values(values)
    feats = np.concatenate([singles[m] for m in singles], axis=1)
    table, mods, _, cond_err = interval_tables(phi, np.zeros_like(phi), feats, split_of, idx, y, names, alpha=alpha,
                                               bonferroni=bonferroni, n_pca=n_pca, augmented=augmented, level=level)
    full = values[:, -1]
    return ShapleyResult(
        values=table, modalities=mods, coalitions=coalition_table(values, logp, hits, coalitions, names, split_of,
                                                                  level=level),
        selection=pd.DataFrame(), selected=pd.DataFrame(), alpha=alpha, value_method="retrieval",
        modality_names=names, bonferroni=bonferroni, augmented=augmented, estimator="exact",
        efficiency_max_error=float(np.abs(phi.sum(1) - full).max()), dataset=f"{run.config.get('dataset', '')}",
        n_calib=int((split_of == "calib").sum()), cond_coverage_error=cond_err, level=level)


# -- the XOR curve --------------------------------------------------------------------------------
@dataclass
class XorCurveResult(Result):
    """2->1 top-1 on ``xor-trimodal`` against ``p`` per method, over seeds.

    ``runs``: one row per ``(p, method, seed)``: ``top1``. ``curve``: per ``(p, method)``: mean
    ``top1`` with ``top1_ci_lower/_upper`` (t-interval over seeds at ``level``), ``oracle`` and
    ``chance``. ``differences``: per ``p``, ConFu minus CLIP paired by seed, with its t-interval.
    """

    runs: pd.DataFrame
    curve: pd.DataFrame
    differences: pd.DataFrame
    d: int = 3
    level: float = 0.95


XOR_TRAINING = {"epochs": 20, "batch_size": 256, "lr": 3e-3, "hidden": 64, "embed": 32, "dropout": 0.0}


def xor_curve(*, ps: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0), seeds: int = 3, d: int = 3, n: int = 4000,
              methods: dict[str, float] | None = None, dim: int = 32, level: float = 0.95, progress: bool = True,
              **training) -> XorCurveResult:
    """Train ConFu (``lam = 0.5``) and CLIP (``lam = 0``) on ``xor-trimodal(n, d, p, seed)`` for every
    ``p`` and seed and measure 2->1 top-1 (``a+c -> b`` among all ``2^d`` candidates).

    ``training``: :class:`~workbench.training.config.TrainConfig` fields over
    :data:`XOR_TRAINING` (20 epochs, batch 256, Adam 3e-3, encoders 64/32, no dropout: the settings
    under which ConFu reaches the oracle at d = 3 on the CPU in seconds).
    """
    from workbench import load_dataset
    from workbench.progress import progress_bar
    from workbench.training.train import train

    methods = {"ConFu": 0.5, "CLIP": 0.0} if methods is None else dict(methods)
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds!r}")
    if not all(0 <= p <= 1 for p in ps):
        raise ValueError(f"every p must be in [0, 1], got {list(ps)}")
    check_level(level)
    settings = {**XOR_TRAINING, **training}
    rows = []
    grid = [(p, name, lam, seed) for p in ps for name, lam in methods.items() for seed in range(seeds)]
    for p, name, lam, seed in progress_bar(grid, enabled=progress, desc="xor curve"):
        ds = load_dataset("xor-trimodal", n=n, d=d, p=p, seed=seed)
        run = train(ds, task="alignment", task_params={"lam": lam, "dim": dim}, seed=seed, save=False,
                    progress=False, **settings)
        rows.append({"p": p, "method": name, "seed": seed, "top1": xor_2to1_accuracy(run.model, ds, run.splits.test)})
    runs = pd.DataFrame(rows)
    curve = []
    for (p, name), part in runs.groupby(["p", "method"], sort=False):
        mean, lo, hi = t_interval(part["top1"].to_numpy(), level)
        curve.append({"p": p, "method": name, "top1": float(mean), "top1_ci_lower": float(lo),
                      "top1_ci_upper": float(hi), "oracle": p + (1 - p) / 2**d, "chance": 1 / 2**d,
                      "n_seeds": len(part), "level": level})
    diffs = []
    if {"ConFu", "CLIP"} <= set(methods):
        wide = runs.pivot_table(index=["p", "seed"], columns="method", values="top1").reset_index()
        for p, part in wide.groupby("p"):
            mean, lo, hi = t_interval((part["ConFu"] - part["CLIP"]).to_numpy(), level)
            diffs.append({"p": p, "difference": float(mean), "difference_ci_lower": float(lo),
                          "difference_ci_upper": float(hi), "n_seeds": len(part), "level": level})
    return XorCurveResult(runs, pd.DataFrame(curve), pd.DataFrame(diffs), d, level)
