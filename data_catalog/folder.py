"""User data: a folder with one array file per modality becomes a dataset.

Layout::

    my_study/
        audio.npy          # (n, ...) one file per modality: .npy or .parquet (numeric columns)
        video.parquet
        labels.csv         # labels: .npy, .csv or .parquet; one column (or a column named "label")
        groups.csv         # optional: one column per group attribute (never a model input)
        card.yaml          # optional: a dataset card with loader "folder"; inferred if absent

Every problem is a :class:`FolderError` that names the file, modality or column:
mismatched sample counts, NaN/inf values, non-numeric labels, modality names in the card
that have no file, empty files. Reading never writes; :func:`register_folder` writes the
card into the user catalog only after the whole folder loaded cleanly, atomically.

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

from pathlib import Path

import numpy as np
import pandas as pd

from data_catalog.cards_schema import DatasetCard, parse_card, read_card
from workbench.data import DataError, MultimodalDataset, infer_kind

ARRAY_SUFFIXES = (".npy", ".parquet")
LABEL_STEMS = ("labels", "label", "y")
GROUP_STEMS = ("groups", "group")


class FolderError(DataError):
    """A user data folder cannot be read; the message names the file or column."""


def _read_table(path: Path) -> pd.DataFrame:
    if path.suffix == ".csv":
        return pd.read_csv(path)
    return pd.read_parquet(path)


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
    if arr.ndim == 1:
        arr = arr[:, None]
    return arr.astype(np.float32)


def _find(folder: Path, stems: tuple[str, ...], suffixes: tuple[str, ...]) -> Path | None:
    for stem in stems:
        for suf in suffixes:
            if (folder / f"{stem}{suf}").exists():
                return folder / f"{stem}{suf}"
    return None


def _read_labels(path: Path, column: str | None) -> tuple[np.ndarray, list[str] | None]:
    if path.stat().st_size == 0:
        raise FolderError(f"{path}: file is empty")
    if path.suffix == ".npy":
        raw = np.load(path, allow_pickle=False).reshape(-1)
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
    if not np.issubdtype(raw.dtype, np.number):
        raise FolderError(f"{path}: column {col!r} has non-numeric labels (e.g. {raw[0]!r}); use class indices 0..C-1")
    if np.isnan(raw.astype(float)).any():
        raise FolderError(f"{path}: column {col!r} has missing labels")
    if not np.all(np.equal(np.mod(raw, 1), 0)) or raw.min() < 0:
        raise FolderError(f"{path}: column {col!r} must hold non-negative integer class indices")
    return raw.astype(np.int64), None


def infer_card(folder: str | Path, *, name: str | None = None) -> DatasetCard:
    """A card for a folder without ``card.yaml``: every array file is a modality."""
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise FolderError(f"{folder}: not a folder")
    label_file = _find(folder, LABEL_STEMS, (".npy", ".csv", ".parquet"))
    if label_file is None:
        raise FolderError(f"{folder}: no labels file (expected labels.npy, labels.csv or labels.parquet)")
    group_file = _find(folder, GROUP_STEMS, (".csv", ".parquet"))
    skip = {label_file.name} | ({group_file.name} if group_file else set())
    files = sorted(p for p in folder.iterdir() if p.suffix in ARRAY_SUFFIXES and p.name not in skip)
    if not files:
        raise FolderError(f"{folder}: no modality files (*.npy or *.parquet besides the labels)")
    modalities = {}
    for p in files:
        arr = _read_array(p)
        shape = list(arr.shape[1:])
        modalities[p.stem] = {"kind": infer_kind(tuple(shape)), "shape": shape, "file": p.name}
    groups = list(_read_table(group_file).columns) if group_file else []
    data = {
        "name": name or folder.name.replace(" ", "_"),
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


def load_from_card(card: DatasetCard) -> MultimodalDataset:
    """Read every file a folder card names and check them against each other."""
    folder = Path(card.path or ".")
    mods = {}
    for m, mc in card.modalities.items():
        candidates = [folder / mc.file] if mc.file else [folder / f"{m}{s}" for s in ARRAY_SUFFIXES]
        path = next((p for p in candidates if p.exists()), None)
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
        mods[m] = arr
    label_file = folder / card.label.file if card.label.file else _find(folder, LABEL_STEMS, (".npy", ".csv", ".parquet"))
    if label_file is None or not label_file.exists():
        raise FolderError(f"card {card.name!r}: labels file {card.label.file or 'labels.*'} not found in {folder}")
    y, _ = _read_labels(label_file, card.label.column)
    for m, arr in mods.items():
        if len(arr) != len(y):
            raise FolderError(f"modality {m!r} has {len(arr)} samples but {label_file.name} has {len(y)} labels")
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
    classes = card.label.classes or [str(c) for c in range(int(y.max()) + 1)]
    if int(y.max()) >= len(classes):
        raise FolderError(f"{label_file}: label {int(y.max())} but the card lists {len(classes)} classes")
    return MultimodalDataset(
        mods, y, groups=groups, classes=classes, kinds={m: mc.kind for m, mc in card.modalities.items()},
        name=card.name,
    )


def load_folder(folder: str | Path, *, name: str | None = None) -> MultimodalDataset:
    """Load a user data folder (see the module docstring for its layout)."""
    return load_from_card(card_for_folder(folder, name=name))


def register_folder(folder: str | Path, *, catalog_dir: str | Path, name: str | None = None) -> Path:
    """Validate a folder by loading it, then write its card to ``catalog_dir/NAME.yaml``.

    Nothing is written unless the whole folder loads; an existing card of the same name
    is replaced atomically (temp file + rename), never left half-written. The name is checked
    and the card written in one place, :func:`data_catalog.registry.add_folder`.
    """
    from data_catalog.registry import add_folder  # the registry imports this module

    return add_folder(folder, catalog_dir=catalog_dir, name=name)
