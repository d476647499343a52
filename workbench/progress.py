"""One progress-bar helper for long work (epochs, coalitions, sweep cells)."""

from __future__ import annotations

from collections.abc import Iterable


def progress_bar(iterable: Iterable, *, enabled: bool = True, desc: str | None = None, total: int | None = None,
                 leave: bool = False):
    """``iterable`` wrapped in a tqdm bar (a widget in JupyterLab, text in a terminal), or as is."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm  # imported only when a bar is shown

    return tqdm(iterable, desc=desc, total=total, leave=leave)
