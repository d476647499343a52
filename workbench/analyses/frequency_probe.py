"""Frequency probes: how well do geometry + material, or the sound, predict an object's modal frequencies?

VibraVerse (arXiv 2511.20422) benchmarks "prediction of the modal frequencies from geometry and
material" against the physics. The generator (:mod:`data_catalog.vibraverse`) knows every object's
modes exactly, so the probe's error is measured against the truth, not against a label.

For each feature set a linear probe (``StandardScaler`` -> degree-2 polynomial features ->
``RidgeCV`` over a log grid of penalties) is fitted on the training objects to the log of each of the
first ``n_modes`` modal frequencies and scored on the test objects:

- ``geometry+material``: the ``shape`` vector (family one-hot, log dimensions) with log E, log rho and
  nu of the object's material (``ground_truth["objects"]``). For the analytic families log f is a
  sum of these terms (plate: log h + 1/2 log(E / (rho (1 - nu^2))) + log((m/a)^2 + (n/b)^2) + const), so a
  degree-2 probe is nearly exact: this is the physics' ceiling.
- ``geometry``: the shape vector alone (material unknown: the spread of sqrt(E/rho) over the material
  table bounds it).
- ``sound``: the log-mel spectrogram's mean and maximum over time per mel band.
- ``mean``: the training mean of the target (R^2 = 0 by construction; the floor).

Reported per feature set and mode: R^2 of log f and the median relative error of f (``exp`` of the
prediction), each with a percentile-bootstrap interval over test objects (``n_boot`` resamples of
the test set, the probe fixed); and per test object the truth and the prediction.

Example
-------
>>> from data_catalog.vibraverse import vibraverse
>>> ds = vibraverse(n=240, seed=0)
>>> res = frequency_probe(ds, n_modes=1, n_boot=50, seed=0)
>>> s = res.summary.set_index(["features", "metric"])
>>> bool(s.loc[("geometry+material", "r2"), "value"] > 0.95 > s.loc[("geometry", "r2"), "value"])
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

from workbench.stats.intervals import LEVEL, check_level, percentile_interval
from workbench.store.results import Result

__all__ = ["FEATURE_SETS", "FrequencyProbeResult", "frequency_probe", "probe_features"]

FEATURE_SETS = ("geometry+material", "geometry", "sound", "mean")


@dataclass
class FrequencyProbeResult(Result):
    """``summary``: ``features, mode, metric (r2 | median_rel_error), value, value_ci_lower,
    value_ci_upper, n_test, level``; ``predictions``: ``object, features, mode, truth_hz, predicted_hz``."""

    summary: pd.DataFrame
    predictions: pd.DataFrame
    level: float = LEVEL


def probe_features(ds, name: str) -> np.ndarray:
    """The feature matrix ``name`` (one of :data:`FEATURE_SETS` but ``mean``) of a vibraverse dataset."""
    shape = ds.modalities["shape"].numpy().astype(float)
    if name == "geometry":
        return shape
    if name == "geometry+material":
        obj = ds.ground_truth["objects"]
        material = np.column_stack([np.log(obj["E"]), np.log(obj["rho"]), obj["nu"]])
        return np.column_stack([shape, material])
    if name == "sound":
        mel = ds.modalities["sound"].numpy().astype(float)
        return np.column_stack([mel.mean(axis=2), mel.max(axis=2)])
    raise ValueError(f"features: {name!r} is not one of {', '.join(FEATURE_SETS)}")


def _probe(features: str):
    if features == "sound":  # 128 columns: a quadratic expansion would have ~8k; linear is the probe
        return make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))
    return make_pipeline(StandardScaler(), PolynomialFeatures(degree=2), StandardScaler(),
                         RidgeCV(alphas=np.logspace(-6, 2, 17)))


def _r2(y: np.ndarray, p: np.ndarray) -> float:
    ss = float(((y - y.mean()) ** 2).sum())
    return 1.0 - float(((y - p) ** 2).sum()) / ss if ss > 0 else float("nan")


def _metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    return {"r2": _r2(y, p), "median_rel_error": float(np.median(np.abs(np.exp(p - y) - 1.0)))}


def frequency_probe(ds, *, n_modes: int = 3, features: Sequence[str] = FEATURE_SETS, test_size: float = 0.3,
                    n_boot: int = 500, level: float = LEVEL, seed: int = 0) -> FrequencyProbeResult:
    """Fit and score the probes; see the module docstring.

    Parameters
    ----------
    ds : MultimodalDataset
        From :func:`data_catalog.vibraverse.vibraverse` (``shape``, ``sound`` and ``ground_truth``).
    n_modes : int
        The first modes to predict (mode k of an object is its k-th audible frequency; objects with
        fewer audible modes are left out of that mode's probe).
    features : sequence of str
        Among :data:`FEATURE_SETS`.
    test_size : float
        Share of objects held out (a seeded random split).
    n_boot : int
        Bootstrap resamples of the test objects for the intervals.
    """
    level = check_level(level)
    if not isinstance(n_modes, int) or n_modes < 1:
        raise ValueError(f"n_modes: must be a positive integer, got {n_modes!r}")
    if not 0 < test_size < 1:
        raise ValueError(f"test_size: must lie in (0, 1), got {test_size!r}")
    unknown = [f for f in features if f not in FEATURE_SETS]
    if unknown:
        raise ValueError(f"features: {unknown[0]!r} is not one of {', '.join(FEATURE_SETS)}")
    gt = getattr(ds, "ground_truth", None) or {}
    if "freqs" not in gt or "objects" not in gt or "sound" not in ds.modalities:
        raise ValueError("ds: not a vibraverse dataset (needs ground_truth['freqs'], ['objects'] and a sound)")
    freqs = np.asarray(gt["freqs"], dtype=float)
    if n_modes > freqs.shape[1]:
        raise ValueError(f"n_modes: the dataset records {freqs.shape[1]} modes, asked for {n_modes}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(ds.n_samples)
    n_test = max(2, int(round(test_size * ds.n_samples)))
    test, train = np.sort(order[:n_test]), np.sort(order[n_test:])
    if len(train) < 10:
        raise ValueError(f"ds: {len(train)} training objects; need at least 10 for a probe")
    matrices = {f: probe_features(ds, f) for f in features if f != "mean"}
    rows, preds = [], []
    for k in range(n_modes):
        target = np.log(freqs[:, k])
        tr, te = train[np.isfinite(target[train])], test[np.isfinite(target[test])]
        if len(tr) < 10 or len(te) < 2:
            continue
        boots = rng.integers(0, len(te), size=(n_boot, len(te)))
        for f in features:
            if f == "mean":
                p = np.full(len(te), target[tr].mean())
            else:
                p = _probe(f).fit(matrices[f][tr], target[tr]).predict(matrices[f][te])
            y = target[te]
            point = _metrics(y, p)
            draws = {m: np.array([_metrics(y[b], p[b])[m] for b in boots]) for m in point}
            for metric, value in point.items():
                lo, hi = percentile_interval(draws[metric], level)
                rows.append({"features": f, "mode": k + 1, "metric": metric, "value": value,
                             "value_ci_lower": float(lo), "value_ci_upper": float(hi), "n_test": len(te),
                             "level": level})
            preds.append(pd.DataFrame({"object": te, "features": f, "mode": k + 1, "truth_hz": np.exp(y),
                                       "predicted_hz": np.exp(p)}))
    return FrequencyProbeResult(pd.DataFrame(rows), pd.concat(preds, ignore_index=True) if preds else
                                pd.DataFrame(columns=["object", "features", "mode", "truth_hz", "predicted_hz"]),
                                level)
