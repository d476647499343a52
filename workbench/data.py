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

# per-sample dimensions each kind's default encoder expects (models.make_encoder)
KIND_NDIM = {"vector": 1, "sequence": 2, "image": 3}
KIND_LAYOUT = {"vector": "(features,)", "sequence": "(channels, time)", "image": "(channels, height, width)"}
# more classes than this is almost always a column of ids or measurements, not class labels;
# the bound keeps one stray label such as 10**9 from building 10**9 class names
MAX_CLASSES = 10_000


class DataError(ValueError):
    """Bad input data; the message names the file, modality or column at fault."""


def infer_kind(shape: tuple[int, ...]) -> str:
    """Guess a modality kind from the per-sample shape: (d,) vector, (c, t) sequence, (c, h, w) image."""
    return {1: "vector", 2: "sequence", 3: "image"}.get(len(shape), "vector")


def kind_shape_error(kind: str, shape: tuple[int, ...] | list[int]) -> str | None:
    """Why a per-sample ``shape`` does not fit a modality ``kind``, or None if it fits.

    ``vector`` is ``(features,)``, ``sequence`` is ``(channels, time)`` and ``image`` is
    ``(channels, height, width)``: the layouts the default encoders read. One rule shared by
    the card schema and :class:`MultimodalDataset`, so a card that validates also trains.
    """
    if kind not in KIND_NDIM:
        return f"unknown kind {kind!r}; expected one of {list(KIND_NDIM)}"
    if len(shape) != KIND_NDIM[kind]:
        return (f"kind {kind!r} needs a {KIND_NDIM[kind]}-D per-sample shape {KIND_LAYOUT[kind]}, "
                f"got {list(shape)} ({len(shape)}-D)")
    return None


def check_label_values(values: np.ndarray, *, where: str, error: type[DataError] = DataError) -> None:
    """Refuse labels that are not real integer class indices; ``where`` names the file or dataset.

    Complex labels would lose their imaginary part and fractional ones would be truncated
    by the cast to int64, both silently, so both are refused.
    """
    values = np.asarray(values)
    if values.dtype.kind == "c":
        raise error(f"{where}: labels are complex numbers ({values.dtype}); use class indices 0..C-1")
    if values.dtype.kind == "f":
        if not np.isfinite(values).all():
            raise error(f"{where}: labels hold NaN/inf values")
        if not np.equal(np.mod(values, 1), 0).all():
            frac = float(values[np.mod(values, 1) != 0][0])
            raise error(f"{where}: labels must be integer class indices, got e.g. {frac!r}")
    elif values.dtype.kind not in "biu":
        raise error(f"{where}: labels of dtype {values.dtype} are not numeric class indices")


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
        Integer class labels in ``0..n_classes-1``, shape ``(n,)``; or ``(n, L)``, one label per
        step of a sequence sample (read by sequence tasks such as ``coresleep``).
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
        for m, x in self.modalities.items():
            if torch.is_tensor(x) and x.is_complex() or not torch.is_tensor(x) and np.iscomplexobj(x):
                # the cast to float32 would silently drop the imaginary part
                raise DataError(f"dataset {self.name!r}: modality {m!r} holds complex values; pass real features "
                                "(e.g. real and imaginary parts as separate channels)")
        self.modalities = {m: torch.as_tensor(x, dtype=torch.float32) for m, x in self.modalities.items()}
        y = self.y.numpy() if torch.is_tensor(self.y) else np.asarray(self.y)
        check_label_values(y, where=f"dataset {self.name!r}")
        y_t = torch.as_tensor(y).long()
        # (n, L): one label per step of a sequence sample (sleep staging: a stage per 30 s epoch of a
        # 21-epoch sequence, workbench.tasks.coresleep); anything else is one label per sample
        self.y = y_t if y_t.dim() == 2 else y_t.reshape(-1)
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
            top = int(self.y.max()) + 1 if n else 0
            if top > MAX_CLASSES:
                raise DataError(f"dataset {self.name!r}: label {top - 1} implies {top} classes (at most {MAX_CLASSES}); "
                                "labels must be class indices 0..C-1 (remap them, or pass classes=)")
            self.classes = [str(c) for c in range(top)]
        elif n and int(self.y.max()) >= len(self.classes):
            raise DataError(f"dataset {self.name!r}: label {int(self.y.max())} but only {len(self.classes)} classes")
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
        for m, kind in self.kinds.items():
            # a vector encoder flattens, so only sequence/image need their exact layout here
            problem = kind_shape_error(kind, tuple(self.modalities[m].shape[1:])) if kind != "vector" else (
                None if kind in KIND_NDIM else f"unknown kind {kind!r}")
            if problem:
                raise DataError(f"dataset {self.name!r}: modality {m!r}: {problem}")

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

    def patterns(self, idx: np.ndarray | None = None) -> np.ndarray:
        """The presence pattern of each sample as a label: the present modalities joined by ``+``
        (``"(none)"`` when none is), for ``idx`` (default all samples)."""
        idx = np.arange(self.n_samples) if idx is None else np.asarray(idx)
        present = np.stack([self.presence(m).numpy()[idx] for m in self.modality_names], axis=1)
        names = np.array(self.modality_names, dtype=object)
        return np.array(["+".join(names[row]) or "(none)" for row in present], dtype=object)

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
        self, *, train: float = 0.6, calib: float = 0.2, test: float = 0.2, seed: int = 0, by: str | None = None
    ) -> Splits:
        """Seeded train / calibration / test split, stratified by label, or whole groups with ``by``.

        The three fractions must sum to 1. Stratification falls back to a plain shuffle
        when a class is too small to appear in every split. ``by`` names a ``groups`` column whose
        values are never cut across splits (a night, a patient, a recording: samples of one are
        correlated, and a random split would leak between training and test); the fractions are then
        shares of the groups (rounded, at least one group in training and one in test).

        Examples
        --------
        >>> import pandas as pd, torch
        >>> ds = MultimodalDataset({"a": torch.zeros(8, 1)}, torch.tensor([0, 1] * 4),
        ...                        groups=pd.DataFrame({"night": [0, 0, 1, 1, 2, 2, 3, 3]}))
        >>> s = ds.split(by="night", train=0.5, calib=0.25, test=0.25, seed=0)
        >>> [sorted(set(ds.groups["night"].iloc[i])) for i in (s.train, s.calib, s.test)]
        [[0, 2], [1], [3]]
        """
        if not np.isclose(train + calib + test, 1.0):
            raise ValueError(f"split fractions must sum to 1, got {train + calib + test}")
        if by is not None:
            return self._group_split(by, train=train, calib=calib, test=test, seed=seed)
        self.check_splittable(train=train, calib=calib, test=test)
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

    def _group_split(self, by: str, *, train: float, calib: float, test: float, seed: int) -> Splits:
        if self.groups is None or by not in self.groups.columns:
            have = [] if self.groups is None else list(self.groups.columns)
            raise DataError(f"dataset {self.name!r}: split by={by!r}: no such group column (groups: {have})")
        for name, value in (("train", train), ("calib", calib), ("test", test)):
            if not (np.isfinite(value) and 0 <= value <= 1):
                raise ValueError(f"split fraction {name!r} must be in [0, 1], got {value}")
        keys = np.asarray(self.groups[by])
        ids = np.random.default_rng(seed).permutation(np.unique(keys))
        n_test = max(1, int(round(test * len(ids)))) if test > 0 else 0
        n_calib = int(round(calib * len(ids)))
        n_train = len(ids) - n_test - n_calib
        if n_train < 1:
            raise DataError(f"dataset {self.name!r}: {len(ids)} values of {by!r} cannot make a "
                            f"{train:g}/{calib:g}/{test:g} split with one in training")
        parts = [ids[:n_train], ids[n_train:n_train + n_calib], ids[n_train + n_calib:]]
        tr, ca, te = (np.flatnonzero(np.isin(keys, p)) for p in parts)
        return Splits(tr, ca, te, seed)

    def check_splittable(self, *, train: float = 0.6, calib: float = 0.2, test: float = 0.2) -> None:
        """Refuse data a classifier cannot be trained and evaluated on, before any training.

        Needs at least two classes present (one class gives a trivially perfect accuracy) and
        enough samples that every split with a positive fraction can hold one sample of each
        present class: ``n >= ceil(C / smallest positive fraction)``, checked on the split
        sizes scikit-learn will actually draw. With fewer samples the training split may hold
        one sample, whose standard deviation is NaN, and training ends in a non-finite loss.
        """
        fractions = {"train": train, "calib": calib, "test": test}
        bad = {k: v for k, v in fractions.items() if not (np.isfinite(v) and 0 <= v <= 1)}
        if bad:
            name, value = next(iter(bad.items()))
            raise ValueError(f"split fraction {name!r} must be in [0, 1], got {value}")
        if train <= 0:
            raise ValueError(f"split fraction 'train' must be positive, got {train}")
        present = np.unique(self.y.numpy())
        if len(present) < 2:
            label = self.classes[int(present[0])] if len(present) else None
            raise DataError(f"dataset {self.name!r}: labels hold {len(present)} class"
                            f"{'' if label is None else f' ({label!r})'}; classification needs at least 2")
        n_classes = len(present)
        sizes = _split_sizes(self.n_samples, train, calib, test)
        if min(size for name, size in sizes.items() if fractions[name] > 0) >= n_classes:
            return
        need = self.n_samples
        while min(size for name, size in _split_sizes(need, train, calib, test).items() if fractions[name] > 0) < n_classes:
            need += 1
        shares = "/".join(f"{v:g}" for v in fractions.values())
        raise DataError(f"dataset {self.name!r} has {self.n_samples} samples; a {shares} train/calib/test split of "
                        f"{n_classes} classes needs at least {need} (one sample per class in every split)")

    def __repr__(self) -> str:
        mods = ", ".join(f"{m}{list(s)}" for m, s in self.shapes.items())
        grp = [] if self.groups is None else list(self.groups.columns)
        return (
            f"MultimodalDataset({self.name!r}, n={self.n_samples}, classes={self.n_classes}, "
            f"modalities=[{mods}], groups={grp})"
        )


def _split_sizes(n: int, train: float, calib: float, test: float) -> dict[str, int]:
    """Sizes :meth:`MultimodalDataset.split` draws for ``n`` samples (scikit-learn rounds the test part up)."""
    rest = int(np.ceil(n * (calib + test) - 1e-9)) if calib + test > 0 else 0
    if calib == 0 or test == 0:
        return {"train": n - rest, "calib": rest if test == 0 else 0, "test": rest if calib == 0 else 0}
    n_test = int(np.ceil(rest * test / (calib + test) - 1e-9))
    return {"train": n - rest, "calib": rest - n_test, "test": n_test}


def stratified_split(idx: np.ndarray, y: np.ndarray, *, test_size: float, seed: int):
    """Split ``idx`` stratified by ``y``; a plain shuffle when a class is too small to stratify."""
    try:
        return train_test_split(idx, test_size=test_size, random_state=seed, stratify=y)
    except ValueError:  # a class too small to stratify
        return train_test_split(idx, test_size=test_size, random_state=seed)
