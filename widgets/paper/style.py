"""One look for every paper figure: colour-blind-safe palette, one-column width, font sizes, layout.

Figures are :class:`matplotlib.figure.Figure` objects built without :mod:`matplotlib.pyplot`, so no
GUI backend is ever selected and nothing global is touched (``savefig`` renders through Agg for
PNG and through matplotlib's own vector backends for PDF and SVG). The style is seaborn's
``"ticks"`` axes and ``"paper"`` context with our sizes on top, applied with
:func:`paper_style` (a :func:`matplotlib.rc_context`) while a figure is built and saved.

- Palette: Okabe & Ito (2008), distinguishable under the common colour-vision deficiencies;
  seaborn ships it as ``"colorblind"`` in a different order, so we list it here once.
- Width: :data:`COLUMN_WIDTH` = 3.4 in (one column of a two-column paper: IEEE, ACM, NeurIPS
  two-column is 3.25-3.5 in); :data:`DOUBLE_WIDTH` = 7.0 in for a figure across both columns.
- Fonts: 8 pt text, 7 pt ticks and legend, readable when printed at that width; fonts are
  embedded as TrueType (``pdf.fonttype = 42``) so journals' checkers and vector editors accept them.
- Layout: ``layout="constrained"`` (matplotlib's successor of ``tight_layout``, which also
  makes room for legends and colour bars), saved with ``bbox_inches="tight"``.

Examples
--------
>>> fig, ax = new_figure(height=2.0)
>>> fig.get_size_inches().tolist()
[3.4, 2.0]
>>> text("cost in $ and $x$")
'cost in \\\\$ and \\\\$x\\\\$'
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import matplotlib as mpl
import numpy as np
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

#: Okabe-Ito colours (blue, orange, bluish green, vermillion, reddish purple, sky blue, yellow, black)
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
#: grey for reference lines, flagged groups and secondary marks
GREY = "#999999"
#: sequential colour map for matrices (perceptually uniform, readable in grey scale)
CMAP = "viridis"
#: diverging colour map centred at 0 (blue-red, readable by the common colour-vision deficiencies)
CMAP_DIVERGING = "RdBu"
COLUMN_WIDTH = 3.4
DOUBLE_WIDTH = 7.0
FONT_SIZE = 8
SMALL_FONT_SIZE = 7
DPI = 300


def rc() -> dict:
    """The rcParams of the paper style (seaborn ``ticks`` + ``paper`` context + our sizes and palette)."""
    params = {**sns.axes_style("ticks"), **sns.plotting_context("paper")}
    params.update({
        "font.size": FONT_SIZE, "axes.titlesize": FONT_SIZE, "axes.labelsize": FONT_SIZE,
        "xtick.labelsize": SMALL_FONT_SIZE, "ytick.labelsize": SMALL_FONT_SIZE,
        "legend.fontsize": SMALL_FONT_SIZE, "legend.title_fontsize": SMALL_FONT_SIZE,
        "figure.titlesize": FONT_SIZE, "axes.prop_cycle": mpl.cycler(color=PALETTE),
        "axes.spines.top": False, "axes.spines.right": False, "legend.frameon": False,
        "lines.linewidth": 1.2, "lines.markersize": 4, "errorbar.capsize": 0,
        "figure.dpi": 100, "savefig.dpi": DPI, "savefig.bbox": "tight", "savefig.pad_inches": 0.02,
        # editable, embeddable text in vector output
        "pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "none",
        # deterministic SVG ids, so the same result gives the same file
        "svg.hashsalt": "workbench",
    })
    return params


@contextlib.contextmanager
def paper_style() -> Iterator[None]:
    """Apply the paper style while building or saving a figure (restored afterwards).

    Examples
    --------
    >>> with paper_style():
    ...     fig, ax = new_figure()
    >>> round(ax.xaxis.label.get_fontsize())
    8
    """
    with mpl.rc_context(rc()):
        yield


def new_figure(*, width: float = COLUMN_WIDTH, height: float = 2.4, nrows: int = 1, ncols: int = 1,
               **subplot_kw) -> tuple[Figure, Axes | np.ndarray]:
    """A constrained-layout figure of ``width`` x ``height`` inches and its axes (an array when
    ``nrows * ncols > 1``); build it inside :func:`paper_style` for the paper fonts.

    Examples
    --------
    >>> fig, axes = new_figure(ncols=2)
    >>> axes.shape
    (2,)
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"width, height: must be positive inches, got {width}, {height}")
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=True, **subplot_kw)
    return fig, axes


def text(value: object) -> str:
    """``value`` as literal matplotlib text: a ``$`` in a run's, dataset's or modality's name would
    otherwise start mathtext (rendered as math, or failing to parse at save time)."""
    return str(value).replace("$", r"\$")


def color(i: int) -> str:
    """The ``i``-th palette colour (cycling).

    Examples
    --------
    >>> color(0), color(len(PALETTE))
    ('#0072B2', '#0072B2')
    """
    return PALETTE[i % len(PALETTE)]


def annotated_heatmap(ax: Axes, values: np.ndarray, *, rows: list[str], columns: list[str], cmap: str = CMAP,
                      vmin: float | None = None, vmax: float | None = None, fmt: str = "{:.2f}",
                      cell_text: list[list[str]] | None = None, label: str = "", gid: str = "heatmap"):
    """Draw ``values`` (rows x columns) as cells with their value written in each (``cell_text``
    replaces the formatted value, e.g. to add an interval), a colour bar titled ``label``; NaN cells
    stay blank. The image carries ``gid`` so tests read the drawn array back.

    Examples
    --------
    >>> with paper_style():
    ...     fig, ax = new_figure()
    ...     im = annotated_heatmap(ax, np.array([[0.1, 0.9]]), rows=["r"], columns=["a", "b"])
    >>> im.get_array().tolist(), [t.get_text() for t in ax.texts]
    ([[0.1, 0.9]], ['0.10', '0.90'])
    """
    values = np.asarray(values, dtype=float)
    if values.shape != (len(rows), len(columns)):
        raise ValueError(f"values: shape {values.shape} does not match {len(rows)} rows x {len(columns)} columns")
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    image.set_gid(gid)
    norm = image.norm
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            if not np.isfinite(values[i, j]):
                continue
            shade = norm(values[i, j])
            dark = shade < 0.35 or (cmap == CMAP_DIVERGING and shade > 0.8)
            ax.text(j, i, cell_text[i][j] if cell_text is not None else fmt.format(values[i, j]), ha="center",
                    va="center", fontsize=SMALL_FONT_SIZE - 1, color="white" if dark else "black")
    ax.set_xticks(range(len(columns)), [text(c) for c in columns], rotation=30 if len(columns) > 4 else 0,
                  ha="right" if len(columns) > 4 else "center")
    ax.set_yticks(range(len(rows)), [text(r) for r in rows])
    ax.spines[:].set_visible(False)
    ax.tick_params(length=0)
    bar = ax.figure.colorbar(image, ax=ax, shrink=0.9)
    bar.set_label(text(label))
    return image


def interval_bars(ax: Axes, labels: list[str], value: np.ndarray, lower: np.ndarray, upper: np.ndarray, *,
                  bar_color: str = PALETTE[0], gid: str = "bars"):
    """Bars of ``value`` with asymmetric error bars ``[lower, upper]`` (NaN bounds: no bar drawn);
    the bars carry ``gid`` and the error bars ``gid + ":intervals"`` so tests read them back.

    Examples
    --------
    >>> with paper_style():
    ...     fig, ax = new_figure()
    ...     bars = interval_bars(ax, ["a", "b"], np.array([0.5, 0.2]), np.array([0.4, 0.1]), np.array([0.6, 0.3]))
    >>> [round(float(b.get_height()), 2) for b in bars]
    [0.5, 0.2]
    """
    value, lower, upper = (np.asarray(v, dtype=float) for v in (value, lower, upper))
    x = np.arange(len(labels), dtype=float)
    bars = ax.bar(x, value, width=0.7, color=bar_color, gid=gid)
    ok = np.isfinite(lower) & np.isfinite(upper)
    ax.errorbar(x[ok], value[ok], yerr=np.vstack([value[ok] - lower[ok], upper[ok] - value[ok]]), fmt="none",
                ecolor="black", elinewidth=1.0, capsize=2, gid=f"{gid}:intervals")
    ax.set_xticks(x, [text(v) for v in labels], rotation=25 if len(labels) > 3 else 0,
                  ha="right" if len(labels) > 3 else "center")
    return bars
