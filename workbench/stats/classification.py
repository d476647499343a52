"""Classification metrics from confusion matrices, vectorised over bootstrap resamples (numpy only).

Accuracy, macro-F1 (mean over the classes that occur in the labels or the predictions, as
scikit-learn's ``f1_score(average="macro")``; a class's F1 is 0 when it has no true positive) and
Cohen's kappa ``(p_o - p_e) / (1 - p_e)``. :func:`bootstrap_scores` draws multinomial weights
over samples once and computes every resample's confusion matrix as one matrix product, so
hundreds of resamples of many conditions cost little.

Examples
--------
>>> y, pred = np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 2])
>>> c = confusion(y, pred, 3)
>>> [round(float(f(c)), 3) for f in (accuracy, macro_f1, cohen_kappa)]
[0.8, 0.822, 0.688]
"""

from __future__ import annotations

import numpy as np

from workbench.stats.intervals import percentile_interval

METRICS = ("accuracy", "macro_f1", "kappa")


def confusion(y: np.ndarray, pred: np.ndarray, n_classes: int, weights: np.ndarray | None = None) -> np.ndarray:
    """``(K, K)`` confusion counts (rows true, columns predicted); ``weights (B, n)`` gives ``(B, K, K)``."""
    code = np.asarray(y, dtype=np.int64) * n_classes + np.asarray(pred, dtype=np.int64)
    onehot = np.zeros((len(code), n_classes * n_classes))
    onehot[np.arange(len(code)), code] = 1.0
    counts = onehot.sum(0) if weights is None else np.asarray(weights, dtype=float) @ onehot
    return counts.reshape(*counts.shape[:-1], n_classes, n_classes)


def accuracy(c: np.ndarray) -> np.ndarray:
    total = c.sum((-1, -2))
    return np.trace(c, axis1=-2, axis2=-1) / np.where(total > 0, total, np.nan)


def macro_f1(c: np.ndarray) -> np.ndarray:
    tp = np.diagonal(c, axis1=-2, axis2=-1)
    true, predicted = c.sum(-1), c.sum(-2)
    occurs = (true + predicted) > 0
    f1 = np.where(occurs, 2 * tp / np.where(occurs, true + predicted, 1), 0.0)
    return f1.sum(-1) / np.maximum(occurs.sum(-1), 1)


def cohen_kappa(c: np.ndarray) -> np.ndarray:
    total = c.sum((-1, -2))
    po = np.trace(c, axis1=-2, axis2=-1) / total
    pe = (c.sum(-1) * c.sum(-2)).sum(-1) / total**2
    return np.where(pe < 1, (po - pe) / np.where(pe < 1, 1 - pe, 1), 0.0)


SCORERS = {"accuracy": accuracy, "macro_f1": macro_f1, "kappa": cohen_kappa}


def bootstrap_weights(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_boot, n)`` resample counts (multinomial, equivalent to drawing n samples with replacement)."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float)


def bootstrap_scores(y: np.ndarray, pred: np.ndarray, n_classes: int, weights: np.ndarray, *,
                     level: float = 0.95, metrics: tuple[str, ...] = METRICS) -> dict[str, tuple[float, float, float]]:
    """``{metric: (estimate, lower, upper)}``: the estimate on all samples and the percentile
    interval of the resamples ``weights`` (the same weights for every condition make the
    intervals of two conditions on the same samples comparable)."""
    full = confusion(y, pred, n_classes)
    boot = confusion(y, pred, n_classes, weights)
    out = {}
    for name in metrics:
        draws = SCORERS[name](boot)
        lo, hi = percentile_interval(draws, level)
        out[name] = (float(SCORERS[name](full)), float(lo), float(hi))
    return out
