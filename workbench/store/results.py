"""Saving and loading analysis results: dataclasses of tidy DataFrames and plain values.

Every analysis result subclasses :class:`Result`: its DataFrame fields are written as
Parquet files and everything else as one JSON file, each atomically (temp file + rename),
so a result folder is never half-written (:mod:`workbench.store.atomic`).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from pathlib import Path
from typing import TypeVar

import pandas as pd

# the one atomic-write implementation; re-exported here for the modules that import it from results
from workbench.store.atomic import (  # noqa: F401
    atomic_write_bytes,
    atomic_write_frame,
    atomic_write_json,
    jsonable,
)

T = TypeVar("T", bound="Result")

#: formats of :meth:`Result.save_figures`
FIGURE_FORMATS = ("pdf", "svg", "png")
#: the UI module that draws paper figures, found by name (like :data:`workbench.display.UI_REGISTRY`):
#: the core depends on no UI module, so the import graph has no core -> UI edge
PAPER_FIGURES_MODULE = "widgets.paper"



class NoFiguresError(ValueError):
    """:meth:`Result.save_figures` of a result whose class has no paper figures."""


# "module:ClassName" -> every Result subclass defined so far in this process (see load_result)
_DEFINED: dict[str, type[Result]] = {}


@dataclasses.dataclass
class Result:
    """Base for analysis results: DataFrame fields + JSON-able fields, saved to a folder.

    In a notebook a result shows itself through :func:`workbench.display.show`: the panel
    registered for its class, or its tables as HTML when the UI is not installed.

    Subclasses that renamed columns or fields keep older result folders loadable with
    :meth:`_legacy_columns` and :meth:`_legacy_fields`, applied by :meth:`load`.
    """

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        _DEFINED[f"{cls.__module__}:{cls.__qualname__}"] = cls

    def _ipython_display_(self) -> None:
        """Show the result when it is the last expression of a notebook cell."""
        from workbench.display import show

        show(self)

    def save_figures(self, folder: str | Path, *, format: str = "pdf", dpi: int = 300) -> list[Path]:
        """Save the result's paper-ready static figures (seaborn/matplotlib) into ``folder``.

        Each figure is written as ``STEM.FORMAT`` with its caption in ``STEM.txt`` beside it
        (:func:`widgets.paper.save_figures`, found by name: the core imports no UI module).

        Parameters
        ----------
        folder : str or Path
            Created if missing.
        format : {"pdf", "svg", "png"}
        dpi : int
            Resolution of raster output.

        Returns
        -------
        list of Path
            The files written, each figure followed by its caption.

        Examples
        --------
        >>> result.save_figures("figs/", format="pdf")  # doctest: +SKIP
        [PosixPath('figs/shapley_forest.pdf'), PosixPath('figs/shapley_forest.txt'), ...]
        """
        if format not in FIGURE_FORMATS:
            raise ValueError(f"format: {format!r} is not one of {', '.join(FIGURE_FORMATS)}")
        try:
            paper = importlib.import_module(PAPER_FIGURES_MODULE)
        except ImportError as exc:
            raise ImportError(f"save_figures needs the UI package ({PAPER_FIGURES_MODULE}, matplotlib, seaborn), "
                              f"which cannot be imported here: {exc}") from exc
        return paper.save_figures(self, folder, format=format, dpi=dpi)

    @classmethod
    def _legacy_columns(cls) -> dict[str, dict[str, str]]:
        """``{table field: {old column: new column}}`` renamed on load (``"*"``: every table)."""
        return {}

    @classmethod
    def _legacy_fields(cls, fields: dict) -> dict:
        """The JSON fields of a saved result brought up to date (default: unchanged)."""
        return fields

    def to_frame(self) -> pd.DataFrame:
        """The result's main tidy table (the first DataFrame field)."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, pd.DataFrame):
                return value
        raise TypeError(f"{type(self).__name__} has no table")

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        scalars = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, pd.DataFrame):
                atomic_write_frame(folder / f"{f.name}.parquet", value)
            else:
                scalars[f.name] = value
        meta = {"type": type(self).__name__, "module": type(self).__module__, "fields": scalars}
        atomic_write_json(folder / "result.json", meta)
        return folder

    @classmethod
    def load(cls: type[T], folder: str | Path) -> T:
        folder = Path(folder)
        meta_path = folder / "result.json"
        if not meta_path.exists():
            raise FileNotFoundError(f"{folder}: no result.json; not a saved {cls.__name__}")
        meta = json.loads(meta_path.read_text())
        if meta.get("type") != cls.__name__:
            raise ValueError(f"{folder}: holds a {meta.get('type')}, not a {cls.__name__}")
        kwargs = cls._legacy_fields(dict(meta["fields"]))
        legacy = cls._legacy_columns()
        for f in dataclasses.fields(cls):
            path = folder / f"{f.name}.parquet"
            if path.exists():
                frame = pd.read_parquet(path)
                renames = {**legacy.get("*", {}), **legacy.get(f.name, {})}
                kwargs[f.name] = frame.rename(columns={k: v for k, v in renames.items() if v not in frame})
        return cls(**kwargs)


# Result modules before the layout of version 0.2 (run folders store their results' module path):
# old name -> new name, so runs written before the move still load.
MOVED_MODULES = {
    "workbench" + ".gap": "workbench.analyses.gap",
    "workbench" + ".shapley": "workbench.analyses.shapley",
    "workbench" + ".fairness": "workbench.analyses.fairness",
    "workbench" + ".compare": "workbench.analyses.compare",
    "workbench" + ".balancing.benchmark": "workbench.analyses.imbalance_benchmark",
    "workbench" + ".sweep": "workbench.jobs.sweep",
    "workbench" + ".results": "workbench.store.results",
}


def load_result(folder: str | Path) -> Result:
    """Load any saved result.

    Its class is imported from the ``workbench`` package, or is a :class:`Result` subclass already
    defined in this process (an extension's analysis: import its module first); a run folder never
    makes us import any other module.
    """
    folder = Path(folder)
    meta_path = folder / "result.json"
    if not meta_path.exists():
        raise FileNotFoundError(f"{folder}: no result.json")
    meta = json.loads(meta_path.read_text())
    module = str(meta.get("module", ""))
    module = MOVED_MODULES.get(module, module)
    if module.startswith("workbench."):
        cls = getattr(importlib.import_module(module), str(meta.get("type")), None)
    else:
        cls = _DEFINED.get(f"{module}:{meta.get('type')}")
        if cls is None:
            raise ValueError(f"{folder}: result module {module!r} is outside the workbench package and not "
                             f"imported (import the module that defines {meta.get('type')!r} first)")
    if not (isinstance(cls, type) and issubclass(cls, Result)):
        raise ValueError(f"{folder}: unknown result type {meta.get('type')!r}")
    return cls.load(folder)
