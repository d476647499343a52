"""Figure captions: paragraphs under the plot, through the one caption helper of the UI
(:func:`widgets.text.add_caption`: wrapped, escaped line by line by :func:`widgets.text.escape_figure`,
the bottom margin and height grown so the plot area keeps its size).

Examples
--------
>>> import plotly.graph_objects as go
>>> fig = add_caption(go.Figure(), ["a " * 100, "b"])
>>> len(fig.layout.annotations), caption_text(fig).endswith("b")
(1, True)
"""

from __future__ import annotations

import plotly.graph_objects as go

from widgets.text import CAPTION_NAME
from widgets.text import add_caption as _add_caption


def add_caption(fig: go.Figure, paragraphs: list[str]) -> go.Figure:
    """Add ``paragraphs`` (one per line break) as the caption of ``fig``; returns ``fig``."""
    return _add_caption(fig, "\n".join(paragraphs))


def caption_text(fig: go.Figure) -> str:
    """A figure's caption as one string, its lines joined by spaces."""
    return " ".join(a.text.replace("<br>", " ") for a in fig.layout.annotations if a.name == CAPTION_NAME)
