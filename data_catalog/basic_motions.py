"""BasicMotions: real smartwatch accelerometer + gyroscope recordings, read from the sktime wheel.

Four students performed four activities (standing, walking, running, badminton) five times each
while wearing a smartwatch; each recording is 10 s at 10 Hz of a 3-axis accelerometer and a 3-axis
gyroscope (UEA multivariate time-series archive, BasicMotions; 40 train + 40 test recordings, 20
per activity). It is the workbench's real two-sensor stream: ``accelerometer`` and ``gyroscope``
are sequence modalities of shape ``(3, 100)``, the label the activity, and the group ``split``
the archive's own train/test assignment (``ds.split(by="split")`` is not that split; use
:func:`archive_splits`).

The files ship inside ``sktime==1.2.0`` (``sktime/datasets/data/BasicMotions/BasicMotions_{TRAIN,
TEST}.ts``, 455 kB). sktime pins pandas and scikit-learn versions this project does not use, so it
is installed with ``pip install --no-deps sktime==1.2.0`` and never imported: the files are found
with :func:`importlib.util.find_spec` and parsed here (the ``.ts`` format: ``@`` header lines,
then one line per case, dimensions separated by ``:``, values by ``,``, the class label last).
The archive states no license for the data (UNCONFIRMED); the files are read in place, not copied.

Examples
--------
>>> from data_catalog.basic_motions import read_ts
>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "toy.ts"
>>> _ = path.write_text("@problemName toy\\n@dimensions 2\\n@classLabel true a b\\n@data\\n1,2:3,4:a\\n5,6:7,8:b\\n")
>>> x, labels, classes = read_ts(path)
>>> x.shape, labels.tolist(), classes
((2, 2, 2), ['a', 'b'], ['a', 'b'])
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.data import MultimodalDataset, Splits

__all__ = ["BasicMotionsUnavailable", "archive_splits", "basic_motions", "basic_motions_dir", "read_ts"]

PIN = "sktime==1.2.0"
SENSORS = {"accelerometer": slice(0, 3), "gyroscope": slice(3, 6)}


class BasicMotionsUnavailable(FileNotFoundError):
    """sktime (which ships the files) is not installed, or a file is missing; the message says which."""


def basic_motions_dir() -> Path:
    """The BasicMotions folder inside the installed sktime, without importing sktime."""
    spec = importlib.util.find_spec("sktime")
    if spec is None or not spec.submodule_search_locations:
        raise BasicMotionsUnavailable(f"BasicMotions ships inside {PIN}, which is not installed: "
                                      f"pip install --no-deps {PIN}")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "BasicMotions"


def read_ts(path: str | Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """An equal-length multivariate ``.ts`` file -> ``(cases, dimensions, length)`` float32 values, the
    label of each case and the classes the header declares (one-line errors naming file and line)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BasicMotionsUnavailable(f"cannot read {path}: {exc}") from None
    classes: list[str] = []
    rows, labels, in_data = [], [], False
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            low = line.lower()
            if low.startswith("@classlabel"):
                parts = line.split()
                classes = parts[2:] if len(parts) > 2 and parts[1].lower() == "true" else []
            in_data = low.startswith("@data")
            continue
        *dims, label = line.split(":")
        try:
            values = [np.array(d.split(","), dtype=np.float64) for d in dims]
        except ValueError:
            raise ValueError(f"{path}, line {number}: a value is not a number (missing values '?' are not "
                             "supported)") from None
        if len({len(v) for v in values}) != 1 or (rows and (len(values), len(values[0])) != rows[0].shape):
            raise ValueError(f"{path}, line {number}: dimensions of unequal length or a different shape than "
                             "the first case")
        if classes and label not in classes:
            raise ValueError(f"{path}, line {number}: label {label!r} is not among the declared classes {classes}")
        rows.append(np.stack(values))
        labels.append(label)
    if not rows:
        raise ValueError(f"{path}: no cases after @data")
    return np.stack(rows).astype(np.float32), np.array(labels, dtype=object), classes or sorted(set(labels))


def basic_motions(*, folder: str | Path | None = None, name: str = "basic-motions") -> MultimodalDataset:
    """The 80 BasicMotions recordings (train then test), two sensor modalities, group ``split``.

    Parameters
    ----------
    folder : path, optional
        A folder holding ``BasicMotions_TRAIN.ts`` and ``BasicMotions_TEST.ts`` (default: the
        installed sktime's).

    Examples
    --------
    >>> ds = basic_motions()  # doctest: +SKIP
    >>> ds.shapes, ds.classes  # doctest: +SKIP
    ({'accelerometer': (3, 100), 'gyroscope': (3, 100)}, ['Standing', 'Running', 'Walking', 'Badminton'])
    """
    folder = basic_motions_dir() if folder is None else Path(folder)
    parts = []
    for split in ("TRAIN", "TEST"):
        path = folder / f"BasicMotions_{split}.ts"
        if not path.is_file():
            raise BasicMotionsUnavailable(f"{path} is missing (BasicMotions ships inside {PIN})")
        parts.append((split.lower(), *read_ts(path)))
    classes = parts[0][3]
    if parts[1][3] != classes:
        raise ValueError(f"{folder}: the TRAIN and TEST files declare different classes")
    x = np.concatenate([p[1] for p in parts])
    if x.shape[1:] != (6, 100):
        raise ValueError(f"{folder}: expected 6 dimensions of length 100, got {x.shape[1:]}")
    labels = np.concatenate([p[2] for p in parts])
    y = np.array([classes.index(v) for v in labels], dtype=np.int64)
    groups = pd.DataFrame({"split": np.concatenate([[p[0]] * len(p[1]) for p in parts])})
    return MultimodalDataset({m: x[:, s] for m, s in SENSORS.items()}, y, groups=groups, classes=list(classes),
                             kinds={m: "sequence" for m in SENSORS}, name=name)


def archive_splits(ds: MultimodalDataset, *, calib: float = 0.25, seed: int = 0) -> Splits:
    """The archive's own split: its test cases are the test split; its train cases are divided into
    train and calibration (a stratified share ``calib``, seeded)."""
    if ds.groups is None or "split" not in ds.groups:
        raise ValueError(f"dataset {ds.name!r}: needs the group 'split' (a basic_motions dataset)")
    split = ds.groups["split"].to_numpy()
    train_idx, test_idx = np.flatnonzero(split == "train"), np.flatnonzero(split == "test")
    rng = np.random.default_rng(seed)
    y = ds.y.numpy()
    cal = np.concatenate([rng.permutation(part)[: int(round(calib * len(part)))]
                          for part in (train_idx[y[train_idx] == c] for c in np.unique(y[train_idx]))])
    return Splits(train=np.setdiff1d(train_idx, cal), calib=np.sort(cal), test=test_idx, seed=seed)
