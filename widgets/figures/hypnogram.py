"""Figures of a hypnogram result (:class:`workbench.analyses.hypnogram.HypnogramResult`).

- The hypnogram of one night: the true stage (black step line) and the predicted one (blue) against
  time, stages top to bottom W, REM, N1, N2, N3; epochs where a modality is missing shaded, one
  colour per modality; epochs with no modality present have no prediction (gap in the blue line).
- Epoch accuracy per night with its Wilson interval.

Found by name (``workbench.analyses.hypnogram`` -> this module), no registration line.

Example
-------
>>> import pandas as pd
>>> from workbench.analyses.hypnogram import hypnogram_analysis
>>> frame = pd.DataFrame({"sample": [0, 0], "position": [0, 1], "y": [0, 2], "pred": [0, 3],
...                       "head": ["combined", "eeg"], "present_eeg": [True, True], "present_eog": [True, False],
...                       "group_night": [0, 0], "group_start": [0, 0]})
>>> res = hypnogram_analysis(frame, stages=["W", "N1", "N2", "N3", "REM"], modalities=["eeg", "eog"])
>>> [t.name for t in hypnogram_figure(res).data]
['true', 'predicted', 'eog missing']
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from widgets.figures.captions import add_caption
from widgets.text import escaped_figure

MISSING_COLORS = ["#E69F00", "#CC79A7", "#56B4E9", "#009E73"]
EPOCH_HOURS = 30.0 / 3600.0


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` index runs where ``flags`` is True."""
    edges = np.diff(np.r_[0, flags.astype(int), 0])
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def missing_segments(night, modality: str) -> list[tuple[float, float]]:
    """Hours ``(start, end)`` of the runs of epochs of ``night`` (a result's :meth:`night` rows) where
    ``modality`` is missing."""
    hours = night["hours"].to_numpy(float)
    absent = ~night[f"present_{modality}"].to_numpy(bool)
    return [(float(hours[a]), float(hours[b - 1] + EPOCH_HOURS)) for a, b in _runs(absent)]


@escaped_figure
def hypnogram_figure(result, night=None) -> go.Figure:
    """True and predicted stages over ``night`` (default: the first), missing modalities shaded."""
    part = result.night(night)
    order = result.display_order()
    level = {s: i for i, s in enumerate(order)}
    hours = part["hours"].to_numpy(float)
    true = [level[s] for s in part["true"]]
    pred = [level[s] if s else None for s in part["predicted"]]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=hours, y=true, mode="lines", line={"shape": "hv", "color": "black", "width": 2},
                             name="true"))
    fig.add_trace(go.Scatter(x=hours, y=pred, mode="lines", line={"shape": "hv", "color": "#0072B2", "width": 1.5},
                             name="predicted", connectgaps=False, opacity=0.85))
    for i, m in enumerate(result.modalities):
        segments = missing_segments(part, m)
        color = MISSING_COLORS[i % len(MISSING_COLORS)]
        for a, b in segments:
            fig.add_vrect(x0=a, x1=b, fillcolor=color, opacity=0.18, line_width=0, layer="below")
        if segments:  # a legend entry for the shading
            fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"{m} missing",
                                     marker={"symbol": "square", "size": 12, "color": color, "opacity": 0.4}))
    row = result.nights.set_index("night").loc[part["night"].iloc[0]]
    fig.update_layout(title=f"Hypnogram of night {part['night'].iloc[0]}: "
                      f"accuracy {row['accuracy']:.2f} [{row['accuracy_ci_lower']:.2f}, {row['accuracy_ci_upper']:.2f}],"
                      f" kappa {row['kappa']:.2f}",
                      xaxis_title="time since the first epoch (hours)", yaxis_title="sleep stage",
                      yaxis={"tickmode": "array", "tickvals": list(range(len(order))), "ticktext": order,
                             "autorange": "reversed"}, height=380)
    return add_caption(fig, [f"Sleep stage per 30 s epoch: true (black) and predicted by the model (blue), W on "
                             "top and N3 at the bottom as in clinical hypnograms. Shaded: epochs where a modality "
                             "is missing (the model predicts from what is present; no blue line where nothing is). "
                             f"Title: this night's epoch accuracy with its {result.level:.0%} Wilson interval "
                             "(epochs of a night are correlated, so it describes this night, not the spread over "
                             "nights) and Cohen's kappa (1: perfect, 0: chance agreement; higher is better)."])


@escaped_figure
def nights_figure(result) -> go.Figure:
    """Epoch accuracy per night with its Wilson interval."""
    n = result.nights
    fig = go.Figure(go.Scatter(x=[str(v) for v in n["night"]], y=n["accuracy"], mode="markers",
                               marker={"size": 9, "color": "#0072B2"}, name="accuracy",
                               error_y={"type": "data", "symmetric": False,
                                        "array": n["accuracy_ci_upper"] - n["accuracy"],
                                        "arrayminus": n["accuracy"] - n["accuracy_ci_lower"]}))
    fig.update_layout(title="Epoch accuracy per night (higher is better)",
                      xaxis_title="night", yaxis_title="accuracy", yaxis_range=[0, 1])
    missing = ", ".join(f"{m} {n[f'missing_{m}'].mean():.0%}" for m in result.modalities)
    return add_caption(fig, [f"Share of a night's scored epochs staged correctly; bars: {result.level:.0%} Wilson "
                             f"intervals over the night's epochs. Epochs with a modality missing, on average: "
                             f"{missing}."])


def report_figures(result) -> list[go.Figure]:
    """The first night's hypnogram and the accuracy per night."""
    return [hypnogram_figure(result), nights_figure(result)]
