"""Learning curves per coalition of modalities, and the measured connection between modalities.

Companion of :mod:`workbench.analyses.theory_lab` on real data, after Zhou Lu, *A Theory of
Multimodal Learning* (NeurIPS 2023, arXiv 2309.12458): another modality helps when it is
**connected** to the others (predictable from them) and the unimodal problem is
**heterogeneous** (much harder than the multimodal one). For each training size ``n`` (a
stratification-free random subset of one training split) and seed, all ``2^M - 1`` coalition
models are trained at once (:func:`workbench.training.stacked.train_coalitions`) and scored on
the same test split: accuracy (Wilson interval per run, t interval over seeds) and log loss.
The **crossover** is the smallest n from which the full model's mean accuracy stays above the
best unimodal one's; the **gap** is their difference at the largest n (t interval over seeds
of the paired difference). **Connection** of pair (a, b): cross-validated R^2
(scikit-learn ``RidgeCV``, 5 shuffled folds) of modality b's embedding in the full model predicted from
modality a's, on the test split. **Heterogeneity** of a pair: the pair model's accuracy minus that of
its better member (the pair's gain over its best member), at the largest n, with a t interval over
seeds of the paired difference.
Both are this project's operationalisations [INFERRED], not the paper's definitions.

Example
-------
>>> from workbench import load_dataset
>>> from workbench.analyses.learning_curves import learning_curves
>>> ds = load_dataset("synthetic-xor", n=300)
>>> res = learning_curves(ds, sizes=[60, 120], seeds=[0, 1], epochs=2, progress=False)
>>> sorted(res.curves["n"].unique().tolist())
[60, 120]
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from workbench.data import MultimodalDataset, Splits
from workbench.progress import progress_bar
from workbench.stats.intervals import LEVEL, check_level, t_interval
from workbench.store.results import Result
from workbench.training.stacked import all_coalitions, train_coalitions
from workbench.training.trainer import predict_proba


@dataclasses.dataclass
class LearningCurvesResult(Result):
    """``runs`` (coalition, n, seed, accuracy, log_loss), ``curves`` (means with t intervals over seeds),
    ``pairs`` (connection R^2 and heterogeneity per ordered pair), the crossover / gap, and
    ``best_unimodal``: the single modality the crossover and the gap compare against (highest mean
    accuracy over sizes and seeds; ``None`` in results saved before the field existed)."""

    runs: pd.DataFrame
    curves: pd.DataFrame
    pairs: pd.DataFrame
    crossover_n: float | None
    gap: float
    gap_ci_lower: float
    gap_ci_upper: float
    level: float = LEVEL
    best_unimodal: str | None = None


def _name(c: tuple[str, ...]) -> str:
    return "+".join(c)


def learning_curves(ds: MultimodalDataset, sizes: Sequence[int], seeds: Sequence[int] = (0, 1, 2), *,
                    epochs: int = 20, level: float = LEVEL, progress: bool = True, **config) -> LearningCurvesResult:
    """Accuracy and log loss against n for every coalition; see the module docstring.

    ``config`` are :class:`~workbench.training.config.TrainConfig` fields (lr, hidden, ...).
    """
    level = check_level(level)
    modalities = ds.modality_names
    coalitions = all_coalitions(modalities)
    rows, emb_rows = [], []
    for seed in progress_bar(list(seeds), enabled=progress, desc="learning curves"):
        base = ds.split(seed=seed, train=0.6, calib=0.2, test=0.2)
        if max(sizes) > len(base.train):
            raise ValueError(f"sizes: {max(sizes)} exceeds the {len(base.train)} training samples of {ds.name}")
        order = np.random.default_rng(seed).permutation(base.train)
        y = ds.y[torch.as_tensor(base.test)].numpy()
        for n in sizes:
            splits = Splits(np.sort(order[:n]), base.calib, base.test, seed)
            fit = train_coalitions(ds, splits, coalitions, epochs=epochs, seed=seed, progress=False, **config)
            for c, model, present in zip(coalitions, fit.models, fit.masks, strict=True):
                mask = {m: present[j].expand(len(base.test)) for j, m in enumerate(modalities)}
                p = predict_proba(model, ds, base.test, mask=mask)[0].numpy()
                rows.append({"coalition": _name(c), "size": len(c), "n": int(n), "seed": int(seed),
                             "accuracy": float((p.argmax(1) == y).mean()),
                             "log_loss": float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None)).mean())})
                if n == max(sizes) and len(c) == len(modalities):
                    emb_rows.append(_connection(model, ds, base.test, seed))
    runs = pd.DataFrame(rows)
    curves = []
    for (c, n), g in runs.groupby(["coalition", "n"], sort=False):
        rec = {"coalition": c, "size": int(g["size"].iloc[0]), "n": n}
        for metric in ("accuracy", "log_loss"):
            mean, lo, hi = t_interval(g[metric].to_numpy(), level)
            rec |= {metric: mean, f"{metric}_ci_lower": lo, f"{metric}_ci_upper": hi}
        curves.append(rec)
    curves = pd.DataFrame(curves)
    full = _name(tuple(modalities))
    piv = runs.pivot_table(index=["n", "seed"], columns="coalition", values="accuracy")
    uni = [m for m in modalities]
    best_uni = piv[uni].mean().idxmax() if len(piv) else uni[0]
    means = piv.groupby(level="n").mean()
    ahead = (means[full] > means[uni].max(axis=1)).to_numpy()
    crossover = None
    for i in range(len(ahead)):
        if ahead[i:].all():
            crossover = float(means.index[i])
            break
    last = piv.xs(max(sizes), level="n")
    gap, lo, hi = t_interval((last[full] - last[best_uni]).to_numpy(), level)
    pairs = _pairs(pd.concat(emb_rows), last, modalities, level)
    return LearningCurvesResult(runs, curves, pairs, crossover, gap, lo, hi, level, str(best_uni))


@torch.no_grad()
def _connection(model, ds: MultimodalDataset, idx: np.ndarray, seed: int) -> pd.DataFrame:
    """Connection R^2 of every ordered pair of the model's embeddings on ``idx`` (see :func:`connection_r2`)."""
    model.eval()
    device = next(model.parameters()).device
    sl = torch.as_tensor(np.asarray(idx), dtype=torch.long)
    emb = {m: h.cpu().numpy() for m, h in model.encode({m: ds.modalities[m][sl].to(device)
                                                         for m in model.modalities}).items()}
    return connection_r2(emb, seed=seed)


def connection_r2(embeddings: dict[str, np.ndarray], *, seed: int = 0, folds: int = 5) -> pd.DataFrame:
    """Cross-validated R^2 of each modality's embedding predicted from each other's (ridge, ``folds`` folds).

    The folds are shuffled (seeded): datasets stored sorted by class (mfeat is) would otherwise
    hold out whole classes in each fold, and R^2 would measure extrapolation to unseen classes
    (it came out negative on mfeat) instead of how well one modality predicts the other.

    Parameters
    ----------
    embeddings : dict of str to array (n, d)
        One embedding per modality, rows aligned.
    seed : int
        Seeds the fold assignment.
    folds : int
        Number of cross-validation folds (at least 2).

    Returns
    -------
    pandas.DataFrame
        ``source``, ``target``, ``seed``, ``connection_r2`` (1 - SS_res / SS_tot over all of the
        target's dimensions) for every ordered pair.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.random.default_rng(0).normal(size=(100, 3))
    >>> t = connection_r2({"a": a, "b": a @ np.ones((3, 2))}).set_index(["source", "target"])
    >>> bool(t.loc[("a", "b"), "connection_r2"] > 0.99)  # b is a function of a (not the other way round)
    True
    """
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold, cross_val_predict

    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    cv = KFold(n_splits=folds, shuffle=True, random_state=seed)
    out = []
    for a, b in itertools.permutations(embeddings, 2):
        pred = cross_val_predict(RidgeCV(alphas=np.logspace(-3, 3, 7)), embeddings[a], embeddings[b], cv=cv)
        ss_res = ((embeddings[b] - pred) ** 2).sum()
        ss_tot = ((embeddings[b] - embeddings[b].mean(0)) ** 2).sum()
        out.append({"source": a, "target": b, "seed": seed, "connection_r2": 1 - ss_res / max(ss_tot, 1e-12)})
    return pd.DataFrame(out)


def _pairs(conn: pd.DataFrame, last: pd.DataFrame, modalities: list[str], level: float) -> pd.DataFrame:
    """Connection and heterogeneity per ordered pair; ``last``: accuracy at the largest n, seeds x coalitions.

    Heterogeneity is the pair's mean accuracy minus that of its better member (by mean); its
    interval is the t interval over seeds of the paired per-seed difference, whose mean is that
    same number.
    """
    rows = []
    for (a, b), g in conn.groupby(["source", "target"]):
        mean, lo, hi = t_interval(g["connection_r2"].to_numpy(), level)
        pair = "+".join(m for m in modalities if m in (a, b))
        better = a if last[a].mean() >= last[b].mean() else b
        het, het_lo, het_hi = t_interval((last[pair] - last[better]).to_numpy(), level)
        rows.append({"source": a, "target": b, "connection_r2": mean, "connection_r2_ci_lower": lo,
                     "connection_r2_ci_upper": hi, "heterogeneity": het, "heterogeneity_ci_lower": het_lo,
                     "heterogeneity_ci_upper": het_hi})
    return pd.DataFrame(rows)
