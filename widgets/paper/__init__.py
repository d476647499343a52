"""Paper-ready static figures: seaborn/matplotlib, one style, saved as PDF, SVG or PNG.

The static counterpart of :mod:`widgets.figures` (interactive plotly): the same tidy tables
of a result, drawn for print at one column width (:mod:`widgets.paper.style`). One module per
result type, found by name like the plotly builders: a result class of
``workbench.analyses.NAME`` gets ``widgets.paper.NAME:paper_figures``; an analysis outside
this package calls :func:`register_paper_figures`. Each builder returns
:class:`PaperFigure` objects (file stem, matplotlib figure, caption); :func:`save_figures`
writes ``STEM.FORMAT`` and the caption as ``STEM.txt`` beside it (and in the file's metadata),
each file atomically.

Examples
--------
>>> import pandas as pd
>>> from workbench.analyses.retrieval import RetrievalResult
>>> table = pd.DataFrame({"query": ["a", "b"], "gallery": ["b", "a"], "kind": "1->1", "metric": "R@1",
...                       "value": [0.5, 0.25], "value_ci_lower": [0.3, 0.1], "value_ci_upper": [0.7, 0.4],
...                       "n": 100, "level": 0.95})
>>> import tempfile
>>> with tempfile.TemporaryDirectory() as tmp:
...     [p.name for p in save_figures(RetrievalResult(table), tmp, format="svg")]
['retrieval_matrix_R1.svg', 'retrieval_matrix_R1.txt']
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from widgets.paper.style import paper_style
from widgets.registry import BUILTIN_ANALYSES, Target, _check_target, class_key, resolve
from workbench.store.atomic import atomic_write_bytes
from workbench.store.results import FIGURE_FORMATS as FORMATS  # one list for the core and the UI
from workbench.store.results import NoFiguresError

# "module:ClassName" -> "module:function(result) -> list[PaperFigure]" (or a callable)
PAPER_FIGURES: dict[str, Target] = {}
_STEM = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclasses.dataclass
class PaperFigure:
    """One static figure: ``name`` (the file stem), the matplotlib ``figure`` and its ``caption``
    (what is plotted, units, what the intervals are, which direction is good)."""

    name: str
    figure: Figure
    caption: str


def stem(name: str) -> str:
    """A file stem from a figure name (``R@10`` -> ``R10``, spaces and slashes -> ``_``).

    Examples
    --------
    >>> stem("gap a-b/epoch 3"), stem("retrieval_matrix_R@10")
    ('gap_a-b_epoch_3', 'retrieval_matrix_R10')
    """
    return _STEM.sub("_", name.replace("@", "")).strip("_.") or "figure"


def register_paper_figures(result_cls: type | str, builder: Target) -> None:
    """Register ``builder(result) -> list[PaperFigure]`` for ``result_cls`` and its subclasses.

    Examples
    --------
    >>> register_paper_figures("my_lab.analysis:MyResult", "my_lab.paper:paper_figures")
    >>> PAPER_FIGURES.pop("my_lab.analysis:MyResult")
    'my_lab.paper:paper_figures'
    """
    PAPER_FIGURES[class_key(result_cls)] = _check_target(builder)


def _conventional(cls: type) -> str | None:
    module = cls.__module__
    if not module.startswith(BUILTIN_ANALYSES):
        return None
    name = f"{__name__}.{module.rpartition('.')[2]}"
    try:
        found = importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        found = False
    return f"{name}:paper_figures" if found else None


def paper_builder(result: object) -> Callable[..., Any] | None:
    """The paper-figure builder of ``result``'s class (nearest registered or conventional class in
    its MRO), or ``None`` when it has none.

    Examples
    --------
    >>> from workbench.analyses.gap import GapResult
    >>> paper_builder(GapResult.__new__(GapResult)).__module__
    'widgets.paper.gap'
    """
    for base in type(result).__mro__:
        target = PAPER_FIGURES.get(class_key(base)) or _conventional(base)
        if target is not None:
            return resolve(target)
    return None


def paper_figures(result: object) -> list[PaperFigure]:
    """The paper figures of ``result`` (built in the paper style); ``[]`` when its class has none."""
    builder = paper_builder(result)
    if builder is None:
        return []
    with paper_style():
        figs = list(builder(result))
        for fig in figs:
            # lay out once and freeze it: constrained layout re-solves on every draw and drifts by
            # hundredths of a point, so saving twice would give two different files
            fig.figure.draw_without_rendering()
            fig.figure.set_layout_engine("none")
    return figs


def _metadata(fmt: str, title: str, caption: str) -> dict:
    if fmt == "pdf":
        return {"Title": title, "Subject": caption, "Creator": "multimodal-workbench"}
    if fmt == "svg":
        return {"Title": title, "Description": caption, "Creator": "multimodal-workbench", "Date": None}
    return {"Title": title, "Description": caption, "Software": "multimodal-workbench"}


def figure_bytes(fig: PaperFigure, *, format: str = "pdf", dpi: int = 300) -> bytes:
    """``fig`` rendered as ``format`` (pdf/svg/png) bytes, in the paper style."""
    buf = io.BytesIO()
    metadata = _metadata(format, fig.name, fig.caption)
    if format == "pdf":
        metadata["CreationDate"] = None  # reproducible files: the same result gives the same bytes
    with paper_style():
        fig.figure.savefig(buf, format=format, dpi=dpi, metadata=metadata)
    return buf.getvalue()


def save_figures(result: object, folder: str | Path, *, format: str = "pdf", dpi: int = 300) -> list[Path]:
    """Write every paper figure of ``result`` into ``folder`` as ``STEM.FORMAT`` plus ``STEM.txt``
    (its caption); returns the paths written, figure then caption, in figure order.

    Parameters
    ----------
    result : Result
        A result with paper figures (:func:`paper_builder`); ``ValueError`` if it has none.
    folder : str or Path
        Created if missing; files of the same names are replaced atomically.
    format : {"pdf", "svg", "png"}
        Vector (pdf, svg: fonts embedded / kept as text) or raster (png at ``dpi``).
    dpi : int
        Resolution of raster output and of rasterised parts of vector output.

    Examples
    --------
    >>> save_figures(result, "figs", format="pdf")  # doctest: +SKIP
    [PosixPath('figs/shapley_forest.pdf'), PosixPath('figs/shapley_forest.txt'), ...]
    """
    if format not in FORMATS:
        raise ValueError(f"format: {format!r} is not one of {', '.join(FORMATS)}")
    if not isinstance(dpi, int) or isinstance(dpi, bool) or dpi <= 0:
        raise ValueError(f"dpi: must be a positive integer, got {dpi!r}")
    if paper_builder(result) is None:
        raise NoFiguresError(f"result: {type(result).__name__} has no paper figures (register_paper_figures)")
    folder = Path(folder)
    written = []
    for fig in paper_figures(result):
        name = stem(fig.name)
        image, caption = folder / f"{name}.{format}", folder / f"{name}.txt"
        atomic_write_bytes(image, figure_bytes(fig, format=format, dpi=dpi))
        atomic_write_bytes(caption, (fig.caption.strip() + "\n").encode())
        written += [image, caption]
    return written


# results outside workbench.analyses (no conventional name)
register_paper_figures("workbench.jobs.tune:TuneResult", "widgets.paper.tune:paper_figures")
