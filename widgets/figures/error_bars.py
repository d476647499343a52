"""Plotly error bars from the interval columns of a tidy table (``EST``, ``EST_ci_lower``,
``EST_ci_upper``, the convention of every analysis table), shared by the figure builders."""

from __future__ import annotations

import pandas as pd

__all__ = ["interval_error_bars"]


def interval_error_bars(frame: pd.DataFrame, est: str, *, scale: float = 1.0, fill: float | None = None) -> dict:
    """An asymmetric ``error_x``/``error_y`` dict drawing ``frame[est]``'s interval, times ``scale``.

    ``fill`` replaces missing bounds (e.g. ``0.0``: no bar where a configuration has one seed);
    ``None`` leaves them missing (plotly draws no bar).

    Examples
    --------
    >>> t = pd.DataFrame({"mean": [1.0], "mean_ci_lower": [0.5], "mean_ci_upper": [2.0]})
    >>> bars = interval_error_bars(t, "mean")
    >>> list(bars["array"]), list(bars["arrayminus"])
    ([1.0], [0.5])
    """
    up = scale * (frame[f"{est}_ci_upper"] - frame[est])
    down = scale * (frame[est] - frame[f"{est}_ci_lower"])
    if fill is not None:
        up, down = up.fillna(fill), down.fillna(fill)
    return {"type": "data", "symmetric": False, "array": up, "arrayminus": down}
