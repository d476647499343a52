"""Figure captions as plain annotations under the plot, one per line.

Annotation text is escaped by :func:`widgets.text.escape_figure` (it may carry user text), so a
caption cannot use plotly's ``<br>``: it is wrapped here into one annotation per line, placed by
pixel offsets so the lines stay apart at any figure height.

Examples
--------
>>> import plotly.graph_objects as go
>>> fig = go.Figure(layout={"annotations": caption(["a " * 100, "b"])})
>>> len(fig.layout.annotations), caption_text(fig).count("b")
(3, 1)
"""

from __future__ import annotations

import textwrap

import plotly.graph_objects as go

WIDTH = 150  # characters per caption line
LINE_PX = 16


def caption(paragraphs: list[str], *, below_px: int = 70, width: int = WIDTH) -> list[dict]:
    """Annotations (paper coordinates, left-aligned) for ``paragraphs``, wrapped at ``width`` characters,
    starting ``below_px`` pixels under the plot area; add them with ``fig.add_annotation``."""
    lines = [line for p in paragraphs for line in textwrap.wrap(p, width)]
    return [{"text": line, "xref": "paper", "yref": "paper", "x": 0, "y": 0, "xanchor": "left", "yanchor": "top",
             "yshift": -below_px - LINE_PX * i, "showarrow": False, "align": "left", "font": {"size": 11}}
            for i, line in enumerate(lines)]


def caption_text(fig: go.Figure) -> str:
    """A figure's caption (the annotations :func:`caption` made) as one string, lines joined by spaces."""
    return " ".join(a.text for a in fig.layout.annotations if a.yshift is not None and a.yshift < 0)


def add_caption(fig: go.Figure, paragraphs: list[str], *, below_px: int = 70) -> go.Figure:
    """Add :func:`caption` annotations to ``fig`` and leave room for them in its bottom margin; returns ``fig``."""
    notes = caption(paragraphs, below_px=below_px)
    for a in notes:
        fig.add_annotation(a)
    fig.update_layout(margin={"b": below_px + LINE_PX * len(notes) + 20})
    return fig
