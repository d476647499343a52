"""Seeded synthetic multimodal generators with known ground truth.

Each generator returns a :class:`workbench.data.MultimodalDataset` whose ``ground_truth``
dict records what the generator knows (per-modality SNR, Bayes accuracy, which modality is
noisy for which group, the missingness rate), so tests can check the analyses against it.

(a) :func:`imbalance`   per-modality informativeness knobs: one modality dominates.
(b) :func:`xor`         the label is the XOR of a sign in modality ``a`` and one in ``b``.
(c) :func:`group_noise` one modality is much noisier for one group (MultiFair tests).
(d) :func:`missing`     modalities missing at random (presence mask), >= 1 kept per sample.

Example
-------
>>> from data_catalog.synthetic import imbalance
>>> ds = imbalance(n=200, snr=[3.0, 0.5], seed=1)
>>> ds.modality_names, ds.n_classes
(['strong', 'weak'], 4)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from workbench.data import MultimodalDataset


def _check(generator: str, *, counts: dict[str, tuple[object, int]] | None = None,
           reals: dict[str, tuple[object, float, float]] | None = None) -> None:
    """Refuse bad generator parameters up front, naming the generator and the parameter.

    ``counts`` maps a name to ``(value, minimum)`` for integers; ``reals`` maps a name to
    ``(value, low, high)`` for finite numbers in ``[low, high]`` (a list value is checked
    element by element). ``n=0`` used to build an empty dataset that failed much later.
    """
    for name, (value, low) in (counts or {}).items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"synthetic {generator}: {name} must be an integer >= {low}, got {value!r}")
    for name, (value, low, high) in (reals or {}).items():
        for v in value if isinstance(value, (list, tuple)) else [value]:
            ok = isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and np.isfinite(v)
            if not (ok and low <= v <= high):
                raise ValueError(f"synthetic {generator}: {name} must be a finite number in [{low:g}, {high:g}], got {v!r}")


def _class_means(rng: np.random.Generator, n_classes: int, dim: int) -> np.ndarray:
    """Unit-norm random class centres in ``dim`` dimensions."""
    mu = rng.standard_normal((n_classes, dim))
    return mu / np.linalg.norm(mu, axis=1, keepdims=True)


def imbalance(
    *, n: int = 2000, n_classes: int = 4, dims: list[int] | None = None, snr: list[float] | None = None,
    names: list[str] | None = None, seed: int = 0,
) -> MultimodalDataset:
    """Gaussian class clusters seen through modalities of different informativeness.

    Modality ``m`` is ``x_m = snr_m * mu_m[y] + N(0, I)`` with unit-norm random class
    centres ``mu_m``; a larger ``snr_m`` makes the modality more informative, so the
    modality with the largest SNR dominates joint training.
    """
    snr = list(snr or [3.0, 0.8])
    dims = list(dims or [16] * len(snr))
    names = list(names or ([f"m{i}" for i in range(len(snr))] if len(snr) != 2 else ["strong", "weak"]))
    if not (len(snr) == len(dims) == len(names)):
        raise ValueError("snr, dims and names must have one entry per modality")
    _check("imbalance", counts={"n": (n, 1), "n_classes": (n_classes, 2), "seed": (seed, 0),
                                **{f"dims[{i}]": (d, 1) for i, d in enumerate(dims)}},
           reals={"snr": (snr, 0.0, 1e6)})
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    mods = {}
    for name, d, s in zip(names, dims, snr, strict=True):
        mu = _class_means(rng, n_classes, d)
        mods[name] = s * mu[y] + rng.standard_normal((n, d))
    return MultimodalDataset(
        mods, y, classes=[str(c) for c in range(n_classes)], name="synthetic-imbalance",
        ground_truth={"snr": dict(zip(names, snr, strict=True)), "dominant": names[int(np.argmax(snr))]},
    )


def xor(*, n: int = 2000, dim: int = 8, n_noise_modalities: int = 1, flip: float = 0.0, seed: int = 0) -> MultimodalDataset:
    """Label = sign bit of modality ``a`` XOR sign bit of modality ``b``.

    Each of ``a`` and ``b`` carries its bit in its first coordinate (``+-1.5`` plus unit
    noise) among ``dim - 1`` noise coordinates; alone each is at chance, together the
    Bayes accuracy is ``(1 - flip) * P(both bits read right or both wrong)``.
    """
    _check("xor", counts={"n": (n, 1), "dim": (dim, 1), "n_noise_modalities": (n_noise_modalities, 0),
                          "seed": (seed, 0)}, reals={"flip": (flip, 0.0, 1.0)})
    rng = np.random.default_rng(seed)
    s_a = rng.integers(0, 2, n)
    s_b = rng.integers(0, 2, n)
    y = s_a ^ s_b
    if flip > 0:
        y = np.where(rng.random(n) < flip, 1 - y, y)

    def carrier(bit):
        x = rng.standard_normal((n, dim))
        x[:, 0] += np.where(bit == 1, 1.5, -1.5)
        return x

    mods = {"a": carrier(s_a), "b": carrier(s_b)}
    for k in range(n_noise_modalities):
        mods["noise" if n_noise_modalities == 1 else f"noise{k}"] = rng.standard_normal((n, dim))
    p_right = norm.cdf(1.5)
    bayes = (1 - flip) * (p_right**2 + (1 - p_right) ** 2) + flip * (2 * p_right * (1 - p_right))
    return MultimodalDataset(
        mods, y, classes=["0", "1"], name="synthetic-xor",
        ground_truth={"interaction": ["a", "b"], "bayes_accuracy": float(bayes), "unimodal_accuracy": 0.5},
    )


def group_noise(
    *, n: int = 4000, dim: int = 16, p_group_b: float = 0.3, p_positive: float = 0.4,
    signal_records: float = 0.35, signal_imaging: float = 1.2, noise_a: float = 1.0,
    noise_ratio_b: float = 5.0, seed: int = 0,
) -> MultimodalDataset:
    """Two modalities; ``imaging`` is ``noise_ratio_b`` times noisier for group B.

    ``records = y * signal_records * 1 + N(0, I)`` (moderate, same for both groups) and
    ``imaging = y * signal_imaging * 1 + N(0, sigma_g^2 I)`` with ``sigma_A = noise_a`` and
    ``sigma_B = noise_ratio_b * noise_a``: imaging is the easy modality for group A and
    nearly useless for group B (methods/multifair.md section 10).
    """
    _check("group_noise", counts={"n": (n, 1), "dim": (dim, 1), "seed": (seed, 0)},
           reals={"p_group_b": (p_group_b, 0.0, 1.0), "p_positive": (p_positive, 0.0, 1.0),
                  "signal_records": (signal_records, -1e6, 1e6), "signal_imaging": (signal_imaging, -1e6, 1e6),
                  "noise_a": (noise_a, 0.0, 1e6), "noise_ratio_b": (noise_ratio_b, 0.0, 1e6)})
    rng = np.random.default_rng(seed)
    g = (rng.random(n) < p_group_b).astype(int)
    y = (rng.random(n) < p_positive).astype(int)
    sigma = np.where(g == 1, noise_ratio_b * noise_a, noise_a)[:, None]
    records = y[:, None] * signal_records + rng.standard_normal((n, dim))
    imaging = y[:, None] * signal_imaging + sigma * rng.standard_normal((n, dim))
    groups = pd.DataFrame({"group": np.where(g == 1, "B", "A")})
    return MultimodalDataset(
        {"records": records, "imaging": imaging}, y, groups=groups, classes=["0", "1"],
        name="synthetic-group-noise",
        ground_truth={"noisy_modality": "imaging", "disadvantaged_group": "B", "noise_ratio": noise_ratio_b},
    )


def missing(
    *, n: int = 1500, n_classes: int = 3, n_modalities: int = 3, dim: int = 12, snr: float = 1.2,
    p_missing: float = 0.3, seed: int = 0,
) -> MultimodalDataset:
    """Class clusters in ``n_modalities`` modalities, each missing at random with ``p_missing``.

    A sample that would lose every modality keeps one chosen at random. Missing entries
    are zero-filled in the tensors and flagged in ``mask``.
    """
    _check("missing", counts={"n": (n, 1), "n_classes": (n_classes, 2), "n_modalities": (n_modalities, 1),
                              "dim": (dim, 1), "seed": (seed, 0)},
           reals={"snr": (snr, 0.0, 1e6), "p_missing": (p_missing, 0.0, 1.0)})
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    names = [f"m{i}" for i in range(n_modalities)]
    present = rng.random((n, n_modalities)) >= p_missing
    empty = ~present.any(1)
    present[empty, rng.integers(0, n_modalities, empty.sum())] = True
    mods, mask = {}, {}
    for j, name in enumerate(names):
        x = snr * _class_means(rng, n_classes, dim)[y] + rng.standard_normal((n, dim))
        mods[name] = np.where(present[:, [j]], x, 0.0)
        mask[name] = present[:, j]
    return MultimodalDataset(
        mods, y, mask=mask, classes=[str(c) for c in range(n_classes)], name="synthetic-missing",
        ground_truth={"p_missing": p_missing, "observed_missing": float(1 - present.mean())},
    )


def xor_trimodal(*, n: int = 4000, d: int = 3, p: float = 1.0, lift: int | None = None, noise: float = 0.0,
                 seed: int = 0) -> MultimodalDataset:
    """Three modalities a, b, c of d bits where only the triple is dependent (Symile's ``BinaryXORDataset``).

    ``a_j, b_j ~ Bernoulli(1/2)``; per sample ``i ~ Bernoulli(p)``; ``c = a xor b`` if ``i = 1`` else
    ``c = a``. Every pair is independent, so pairwise alignment sits at chance for b given (a, c);
    the Bayes top-1 accuracy of retrieving b among all 2^d candidates from (a, c) is
    ``p + (1 - p) / 2^d`` (``ground_truth["oracle_2to1"]``). Bits are coded +-1; with ``lift`` each
    modality is a fixed random orthogonal lift of its bits to ``lift`` dimensions (one matrix per
    modality, from the seed) plus ``N(0, noise^2)``. The label ``y`` is b's first bit (balanced, for
linear probes: readable from z_b, and from (a, c) only through the xor).

    Examples
    --------
    >>> ds = xor_trimodal(n=200, d=3, p=0.5)
    >>> ds.modality_names, ds.ground_truth["oracle_2to1"]
    (['a', 'b', 'c'], 0.5625)
    """
    if not 0 <= p <= 1:
        raise ValueError(f"xor_trimodal: p must be in [0, 1], got {p!r}")
    if d < 1 or n < 2:
        raise ValueError(f"xor_trimodal: need d >= 1 and n >= 2, got d={d!r}, n={n!r}")
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2, (n, d))
    b = rng.integers(0, 2, (n, d))
    informative = rng.random(n) < p
    c = np.where(informative[:, None], a ^ b, a)
    mods = {}
    for name, bits in {"a": a, "b": b, "c": c}.items():
        x = 2.0 * bits - 1.0
        if lift is not None:
            if lift < d:
                raise ValueError(f"xor_trimodal: lift ({lift}) must be >= d ({d})")
            q, _ = np.linalg.qr(rng.standard_normal((lift, lift)))
            x = x @ q[:d]
        mods[name] = x + noise * rng.standard_normal(x.shape) if noise > 0 else x
    return MultimodalDataset(
        mods, b[:, 0].astype(np.int64), classes=["0", "1"], name="xor-trimodal",
        ground_truth={"oracle_2to1": float(p + (1 - p) / 2**d), "chance_2to1": float(1 / 2**d), "d": d, "p": p},
    )
