"""User data: a folder with one array file per modality becomes a dataset.

Layout::

    my_study/
        audio.npy          # (n, ...) one file per modality: .npy or .parquet (numeric columns)
        video.parquet
        labels.csv         # labels: .npy, .csv or .parquet; one column (or a column named "label")
        groups.csv         # optional: one column per group attribute (never a model input)
        card.yaml          # optional: a dataset card with loader "folder"; inferred if absent

Every problem is a :class:`FolderError` that names the file, modality or column:
mismatched sample counts, NaN/inf or complex values, non-numeric, complex, fractional or
one-class labels, more than ``max_classes`` distinct labels, two files for one modality
(``a.npy`` beside ``a.parquet``), modality names in the card that have no file, empty or
unreadable files. Reading never writes; :func:`register_folder` writes the card into the
user catalog only after the whole folder loaded cleanly, atomically.

Labels are class *values*: without ``label.classes`` in the card they are remapped to
``0..C-1`` in sorted order of the values present, and the values become the class names
(labels ``{0, 2, 7}`` give classes ``["0", "2", "7"]``). One stray label of ``10**9``
therefore costs one class, not a billion; more than ``max_classes`` (10,000) distinct
values are refused as almost certainly not class labels. With ``label.classes`` the
labels are indices into that list, as before.

A folder whose name is not a valid card name (``study(1)``) still loads by path: the
dataset is named after a sanitized copy of the folder name (``study_1``), the path kept.

Example
-------
>>> import numpy as np, tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> np.save(d / "a.npy", np.random.rand(20, 3)); np.save(d / "b.npy", np.random.rand(20, 2))
>>> np.save(d / "labels.npy", np.arange(20) % 2)
>>> from data_catalog.folder import load_folder
>>> load_folder(d).modality_names
['a', 'b']
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from data_catalog.cards_schema import DatasetCard, parse_card, read_card
from workbench.data import MAX_CLASSES, DataError, MultimodalDataset, check_label_values, infer_kind

ARRAY_SUFFIXES = (".npy", ".parquet")
LABEL_STEMS = ("labels", "label", "y")
GROUP_STEMS = ("groups", "group")


class FolderError(DataError):
    """A user data folder cannot be read; the message names the file or column."""


def _read_table(path: Path) -> pd.DataFrame:
    """A CSV or Parquet table; any reading problem becomes a :class:`FolderError` naming ``path``."""
    if path.stat().st_size == 0:
        raise FolderError(f"{path}: file is empty")
    try:
        if path.suffix == ".csv":
            return pd.read_csv(path)
        return pd.read_parquet(path)
    except Exception as exc:  # pandas/pyarrow errors do not say which file
        raise FolderError(f"{path}: cannot read ({exc})") from None


def _read_array(path: Path) -> np.ndarray:
    if path.stat().st_size == 0:
        raise FolderError(f"{path}: file is empty")
    try:
        if path.suffix == ".npy":
            arr = np.load(path, allow_pickle=False)  # never unpickle user files
        else:
            frame = _read_table(path)
            non_numeric = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
            if non_numeric:
                raise FolderError(f"{path}: column {non_numeric[0]!r} is not numeric")
            arr = frame.to_numpy(dtype=np.float32)
    except FolderError:
        raise
    except Exception as exc:  # unreadable file: say which
        raise FolderError(f"{path}: cannot read ({exc})") from None
    if arr.size == 0 or arr.ndim == 0:
        raise FolderError(f"{path}: file holds no samples")
    if not np.issubdtype(arr.dtype, np.number):
        raise FolderError(f"{path}: array dtype {arr.dtype} is not numeric")
    if np.iscomplexobj(arr):  # the float32 cast would drop the imaginary part
        raise FolderError(f"{path}: array dtype {arr.dtype} is complex; store real and imaginary parts "
                          "as separate channels")
    if arr.ndim == 1:
        arr = arr[:, None]
    return arr.astype(np.float32)


def _find(folder: Path, stems: tuple[str, ...], suffixes: tuple[str, ...], *, what: str) -> Path | None:
    """The file of the first stem present; the same stem with two suffixes (``labels.npy``
    and ``labels.csv``) is an ambiguity error rather than a silent choice."""
    for stem in stems:
        found = [folder / f"{stem}{suf}" for suf in suffixes if (folder / f"{stem}{suf}").exists()]
        if len(found) > 1:
            raise FolderError(f"{folder}: {len(found)} {what} files ({', '.join(p.name for p in found)}); "
                              "keep one, or name it in card.yaml")
        if found:
            return found[0]
    return None


def _one_file(candidates: list[Path], *, modality: str) -> Path | None:
    found = [p for p in candidates if p.exists()]
    if len(found) > 1:
        raise FolderError(f"{found[0].parent}: modality {modality!r} has {len(found)} files "
                          f"({', '.join(p.name for p in found)}); keep one, or name it in card.yaml")
    return found[0] if found else None


def sanitize_name(text: str) -> str:
    """A valid card name from a folder name: ``study(1)`` -> ``study_1``.

    Runs of characters outside ``[A-Za-z0-9_.-]`` become one ``_``; leading and trailing
    separators are dropped (a card name starts with a letter or digit).
    """
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.-")
    return name or "dataset"


def _read_labels(path: Path, column: str | None, *, classes: list[str] | None = None,
                 max_classes: int = MAX_CLASSES) -> tuple[np.ndarray, list[str]]:
    """Class codes ``0..C-1`` and class names from a labels file (see the module docstring)."""
    if path.stat().st_size == 0:
        raise FolderError(f"{path}: file is empty")
    if path.suffix == ".npy":
        try:
            raw = np.load(path, allow_pickle=False)
        except Exception as exc:  # pickled or corrupt: numpy's message names no file
            raise FolderError(f"{path}: cannot read ({exc})") from None
        if raw.ndim > 1 and raw.size != len(raw):
            raise FolderError(f"{path}: labels have shape {list(raw.shape)}; expected one label per sample")
        raw = raw.reshape(-1)
        col = "labels"
    else:
        frame = _read_table(path)
        if frame.empty:
            raise FolderError(f"{path}: file holds no labels")
        col = column or ("label" if "label" in frame.columns else frame.columns[0])
        if col not in frame.columns:
            raise FolderError(f"{path}: no column {col!r}; columns are {list(frame.columns)}")
        raw = frame[col].to_numpy()
    if raw.size == 0:
        raise FolderError(f"{path}: file holds no labels")
    if raw.dtype.kind not in "biufc":
        raise FolderError(f"{path}: column {col!r} has non-numeric labels (e.g. {raw[0]!r}); use class indices 0..C-1")
    if raw.dtype.kind == "f" and np.isnan(raw).any():
        raise FolderError(f"{path}: column {col!r} has missing labels")
    check_label_values(raw, where=f"{path}: column {col!r}", error=FolderError)
    if raw.min() < 0:
        raise FolderError(f"{path}: column {col!r} must hold non-negative integer class indices")
    if classes is not None:  # the card lists the classes: labels index that list
        if int(raw.max()) >= len(classes):
            raise FolderError(f"{path}: label {int(raw.max())} but the card lists {len(classes)} classes")
        codes, names = raw.astype(np.int64), list(classes)
        present = np.unique(codes)
    else:  # class values: remapped from the values present, never range(max + 1)
        present, codes = np.unique(raw.astype(np.int64), return_inverse=True)
        if len(present) > max_classes:
            raise FolderError(f"{path}: column {col!r} has {len(present)} distinct labels (at most {max_classes} "
                              "classes; pass max_classes= if that many is meant)")
        names = [str(v) for v in present]
    if len(present) < 2:
        raise FolderError(f"{path}: column {col!r} holds only one class ({names[int(present[0])] if classes else names[0]!r}); "
                          "classification needs at least 2")
    return codes.astype(np.int64), names


def infer_card(folder: str | Path, *, name: str | None = None) -> DatasetCard:
    """A card for a folder without ``card.yaml``: every array file is a modality."""
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise FolderError(f"{folder}: not a folder")
    label_file = _find(folder, LABEL_STEMS, (".npy", ".csv", ".parquet"), what="labels")
    if label_file is None:
        raise FolderError(f"{folder}: no labels file (expected labels.npy, labels.csv or labels.parquet)")
    group_file = _find(folder, GROUP_STEMS, (".csv", ".parquet"), what="groups")
    skip = {label_file.name} | ({group_file.name} if group_file else set())
    files = sorted(p for p in folder.iterdir() if p.suffix in ARRAY_SUFFIXES and p.name not in skip)
    if not files:
        raise FolderError(f"{folder}: no modality files (*.npy or *.parquet besides the labels)")
    modalities = {}
    for p in files:
        twins = [q for q in files if q.stem == p.stem]
        if len(twins) > 1:
            _one_file(twins, modality=p.stem)  # raises: a.npy and a.parquet are one modality twice
        arr = _read_array(p)
        shape = list(arr.shape[1:])
        modalities[p.stem] = {"kind": infer_kind(tuple(shape)), "shape": shape, "file": p.name}
    groups = list(_read_table(group_file).columns) if group_file else []
    data = {
        "name": name or sanitize_name(folder.name),
        "description": f"user data from {folder}",
        "source": str(folder),
        "license": "user data",
        "loader": "folder",
        "path": str(folder),
        "label": {"name": "label", "file": label_file.name},
        "modalities": modalities,
        "groups": groups,
        "groups_file": group_file.name if group_file else None,
    }
    return parse_card(data, origin=f"{folder} (inferred)")


def card_for_folder(folder: str | Path, *, name: str | None = None) -> DatasetCard:
    """The folder's ``card.yaml`` if it has one, else an inferred card."""
    folder = Path(folder).resolve()
    if (folder / "card.yaml").exists():
        card = read_card(folder / "card.yaml")
        return card if card.path else card.model_copy(update={"path": str(folder)})
    return infer_card(folder, name=name)


def load_from_card(card: DatasetCard, *, max_classes: int = MAX_CLASSES) -> MultimodalDataset:
    """Read every file a folder card names and check them against each other.

    ``max_classes`` bounds the number of distinct label values (see the module docstring).
    """
    folder = Path(card.path or ".")
    mods, paths = {}, {}
    for m, mc in card.modalities.items():
        candidates = [folder / mc.file] if mc.file else [folder / f"{m}{s}" for s in ARRAY_SUFFIXES]
        path = _one_file(candidates, modality=m)
        if path is None:
            raise FolderError(
                f"card {card.name!r}: modality {m!r} has no file in {folder} "
                f"(looked for {', '.join(p.name for p in candidates)})"
            )
        arr = _read_array(path)
        if not np.isfinite(arr).all():
            rows = int((~np.isfinite(arr)).reshape(len(arr), -1).any(1).sum())
            raise FolderError(f"{path}: modality {m!r} has NaN/inf values in {rows} samples")
        if list(arr.shape[1:]) != list(mc.shape):
            raise FolderError(f"{path}: modality {m!r} has per-sample shape {list(arr.shape[1:])}, card says {mc.shape}")
        mods[m], paths[m] = arr, path
    label_file = (folder / card.label.file if card.label.file
                  else _find(folder, LABEL_STEMS, (".npy", ".csv", ".parquet"), what="labels"))
    if label_file is None or not label_file.exists():
        raise FolderError(f"card {card.name!r}: labels file {card.label.file or 'labels.*'} not found in {folder}")
    y, classes = _read_labels(label_file, card.label.column, classes=card.label.classes, max_classes=max_classes)
    for m, arr in mods.items():
        if len(arr) != len(y):
            raise FolderError(f"{paths[m]}: modality {m!r} has {len(arr)} samples but {label_file.name} has {len(y)} labels")
    groups = None
    if card.groups_file:
        gpath = folder / card.groups_file
        if not gpath.exists():
            raise FolderError(f"card {card.name!r}: groups file {gpath} not found")
        groups = _read_table(gpath)
        if len(groups) != len(y):
            raise FolderError(f"{gpath}: {len(groups)} rows but {len(y)} labels")
        missing_cols = [g for g in card.groups if g not in groups.columns]
        if missing_cols:
            raise FolderError(f"{gpath}: no column {missing_cols[0]!r}; columns are {list(groups.columns)}")
        groups = groups[card.groups] if card.groups else groups
    return MultimodalDataset(
        mods, y, groups=groups, classes=classes, kinds={m: mc.kind for m, mc in card.modalities.items()},
        name=card.name,
    )


def load_folder(folder: str | Path, *, name: str | None = None, max_classes: int = MAX_CLASSES) -> MultimodalDataset:
    """Load a user data folder (see the module docstring for its layout)."""
    return load_from_card(card_for_folder(folder, name=name), max_classes=max_classes)


def register_folder(folder: str | Path, *, catalog_dir: str | Path, name: str | None = None) -> Path:
    """Validate a folder by loading it, then write its card to ``catalog_dir/NAME.yaml``.

    Nothing is written unless the whole folder loads; an existing card of the same name
    is replaced atomically (temp file + rename), never left half-written. The name is checked
    and the card written in one place, :func:`data_catalog.registry.add_folder`.
    """
    from data_catalog.registry import add_folder  # the registry imports this module

    return add_folder(folder, catalog_dir=catalog_dir, name=name)
