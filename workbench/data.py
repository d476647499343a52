"""The multimodal data contract: :class:`MultimodalDataset` and seeded stratified splits.

A dataset is a mapping ``modality name -> tensor`` (first axis = samples) plus integer
labels ``y``, an optional ``groups`` table (attributes such as sex or site that are
*never* fed to a model unless a user asks) and an optional presence ``mask``
(``modality -> bool[n]``) for samples where a modality is missing.

Example
-------
>>> import numpy as np, torch
>>> from workbench.data import MultimodalDataset
>>> ds = MultimodalDataset(
...     modalities={"audio": torch.randn(100, 8), "video": torch.randn(100, 4)},
...     y=torch.arange(100) % 2, name="toy")
>>> splits = ds.split(seed=0)
>>> len(splits.train) + len(splits.calib) + len(splits.test)
100
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split

MODALITY_KINDS = ("vector", "sequence", "image")


class DataError(ValueError):
    """Bad input data; the message names the file, modality or column at fault."""


def infer_kind(shape: tuple[int, ...]) -> str:
    """Guess a modality kind from the per-sample shape: (d,) vector, (c, t) sequence, (c, h, w) image."""
    return {1: "vector", 2: "sequence", 3: "image"}.get(len(shape), "vector")


@dataclass(frozen=True)
class Splits:
    """Index arrays of a seeded stratified train / calibration / test split."""

    train: np.ndarray
    calib: np.ndarray
    test: np.ndarray
    seed: int = 0

    def as_dict(self) -> dict[str, np.ndarray]:
        return {"train": self.train, "calib": self.calib, "test": self.test}

    def labels(self, n: int) -> np.ndarray:
        """Split name of each of ``n`` samples (``""`` for samples in no split)."""
        out = np.full(n, "", dtype=object)
        for name, idx in self.as_dict().items():
            out[idx] = name
        return out


@dataclass
class MultimodalDataset:
    """Modality tensors, labels, optional groups and an optional presence mask.

    Parameters
    ----------
    modalities : dict of str to Tensor
        One float tensor per modality, shape ``(n, *feature_shape)``.
    y : Tensor
        Integer class labels in ``0..n_classes-1``, shape ``(n,)``.
    groups : DataFrame, optional
        One row per sample; columns are group attributes (never model inputs).
    mask : dict of str to bool Tensor, optional
        ``mask[m][i]`` is False where modality ``m`` is missing for sample ``i``.
    classes : list of str, optional
        Class names; defaults to ``"0" .. "C-1"``.
    kinds : dict of str to str, optional
        ``vector``, ``sequence`` or ``image`` per modality (inferred from shapes).
    name : str
        Dataset name (the catalog card's name).
    """

    modalities: dict[str, torch.Tensor]
    y: torch.Tensor
    groups: pd.DataFrame | None = None
    mask: dict[str, torch.Tensor] | None = None
    classes: list[str] | None = None
    kinds: dict[str, str] = field(default_factory=dict)
    name: str = "dataset"
    ground_truth: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.modalities) < 1:
            raise DataError(f"dataset {self.name!r}: no modalities")
        self.modalities = {m: torch.as_tensor(x, dtype=torch.float32) for m, x in self.modalities.items()}
        self.y = torch.as_tensor(self.y).long().reshape(-1)
        n = len(self.y)
        for m, x in self.modalities.items():
            if x.shape[0] != n:
                raise DataError(
                    f"dataset {self.name!r}: modality {m!r} has {x.shape[0]} samples but labels have {n}"
                )
            if not torch.isfinite(x).all():
                bad = int((~torch.isfinite(x)).reshape(n, -1).any(1).sum())
                raise DataError(f"dataset {self.name!r}: modality {m!r} has NaN/inf values in {bad} samples")
        if n and int(self.y.min()) < 0:
            raise DataError(f"dataset {self.name!r}: labels must be non-negative class indices")
        if self.classes is None:
            self.classes = [str(c) for c in range(int(self.y.max()) + 1 if n else 0)]
        if self.groups is not None:
            self.groups = pd.DataFrame(self.groups).reset_index(drop=True)
            if len(self.groups) != n:
                raise DataError(f"dataset {self.name!r}: groups table has {len(self.groups)} rows, labels {n}")
        if self.mask is not None:
            unknown = set(self.mask) - set(self.modalities)
            if unknown:
                raise DataError(f"dataset {self.name!r}: mask names unknown modalities {sorted(unknown)}")
            self.mask = {m: torch.as_tensor(v, dtype=torch.bool).reshape(-1) for m, v in self.mask.items()}
        self.kinds = {m: self.kinds.get(m) or infer_kind(tuple(x.shape[1:])) for m, x in self.modalities.items()}

    # -- shape information -------------------------------------------------------------
    @property
    def n_samples(self) -> int:
        return len(self.y)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def modality_names(self) -> list[str]:
        return list(self.modalities)

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {m: tuple(x.shape[1:]) for m, x in self.modalities.items()}

    def presence(self, modality: str) -> torch.Tensor:
        """Boolean presence of ``modality`` per sample (all True without a mask)."""
        if self.mask is not None and modality in self.mask:
            return self.mask[modality]
        return torch.ones(self.n_samples, dtype=torch.bool)

    def summary(self) -> pd.DataFrame:
        """One row per modality: kind, shape and share of samples present."""
        return pd.DataFrame(
            [
                {
                    "modality": m,
                    "kind": self.kinds[m],
                    "shape": "x".join(map(str, self.shapes[m])),
                    "present": float(self.presence(m).float().mean()),
                }
                for m in self.modalities
            ]
        )

    # -- subsets and splits -----------------------------------------------------------
    def subset(self, idx: np.ndarray | torch.Tensor) -> MultimodalDataset:
        """The samples at ``idx`` as a new dataset (tensors are indexed, not copied twice)."""
        idx_t = torch.as_tensor(np.asarray(idx), dtype=torch.long)
        return MultimodalDataset(
            modalities={m: x[idx_t] for m, x in self.modalities.items()},
            y=self.y[idx_t],
            groups=None if self.groups is None else self.groups.iloc[np.asarray(idx)].reset_index(drop=True),
            mask=None if self.mask is None else {m: v[idx_t] for m, v in self.mask.items()},
            classes=list(self.classes),
            kinds=dict(self.kinds),
            name=self.name,
            ground_truth=self.ground_truth,
        )

    def select_modalities(self, names: list[str]) -> MultimodalDataset:
        """The same samples restricted to the modalities in ``names``."""
        unknown = [m for m in names if m not in self.modalities]
        if unknown:
            raise DataError(f"dataset {self.name!r} has no modality {unknown[0]!r}; it has {self.modality_names}")
        return MultimodalDataset(
            modalities={m: self.modalities[m] for m in names},
            y=self.y,
            groups=self.groups,
            mask=None if self.mask is None else {m: v for m, v in self.mask.items() if m in names},
            classes=list(self.classes),
            kinds={m: self.kinds[m] for m in names},
            name=self.name,
            ground_truth=self.ground_truth,
        )

    def split(
        self, *, train: float = 0.6, calib: float = 0.2, test: float = 0.2, seed: int = 0
    ) -> Splits:
        """Seeded train / calibration / test split, stratified by label.

        The three fractions must sum to 1. Stratification falls back to a plain shuffle
        when a class is too small to appear in every split.
        """
        if not np.isclose(train + calib + test, 1.0):
            raise ValueError(f"split fractions must sum to 1, got {train + calib + test}")
        idx = np.arange(self.n_samples)
        y = self.y.numpy()
        rest_frac = calib + test
        tr, rest = stratified_split(idx, y, test_size=rest_frac, seed=seed)
        if test == 0:
            return Splits(np.sort(tr), np.sort(rest), np.array([], dtype=int), seed)
        if calib == 0:
            return Splits(np.sort(tr), np.array([], dtype=int), np.sort(rest), seed)
        ca, te = stratified_split(rest, y[rest], test_size=test / rest_frac, seed=seed + 1)
        return Splits(np.sort(tr), np.sort(ca), np.sort(te), seed)

    def __repr__(self) -> str:
        mods = ", ".join(f"{m}{list(s)}" for m, s in self.shapes.items())
        grp = [] if self.groups is None else list(self.groups.columns)
        return (
            f"MultimodalDataset({self.name!r}, n={self.n_samples}, classes={self.n_classes}, "
            f"modalities=[{mods}], groups={grp})"
        )


def stratified_split(idx: np.ndarray, y: np.ndarray, *, test_size: float, seed: int):
    """Split ``idx`` stratified by ``y``; a plain shuffle when a class is too small to stratify."""
    try:
        return train_test_split(idx, test_size=test_size, random_state=seed, stratify=y)
    except ValueError:  # a class too small to stratify
        return train_test_split(idx, test_size=test_size, random_state=seed)
