"""Figures of the frequency probes (:class:`workbench.analyses.frequency_probe.FrequencyProbeResult`).

- Predicted against true modal frequency (log-log), a colour per feature set, the identity dotted.
- R^2 of log f per feature set and mode with its bootstrap interval.

Found by name (``workbench.analyses.frequency_probe`` -> this module).

Example
-------
>>> import pandas as pd
>>> from workbench.analyses.frequency_probe import FrequencyProbeResult
>>> preds = pd.DataFrame({"object": [0, 1], "features": "sound", "mode": 1, "truth_hz": [100.0, 200.0],
...                       "predicted_hz": [110.0, 190.0]})
>>> summary = pd.DataFrame({"features": ["sound"], "mode": [1], "metric": ["r2"], "value": [0.9],
...                         "value_ci_lower": [0.8], "value_ci_upper": [0.95], "n_test": [2], "level": [0.95]})
>>> [t.name for t in scatter_figure(FrequencyProbeResult(summary, preds)).data]
['sound', 'prediction = truth']
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from widgets.figures.captions import add_caption
from widgets.text import escaped_figure

COLORS = {"geometry+material": "#0072B2", "geometry": "#E69F00", "sound": "#009E73", "mean": "#999999"}


@escaped_figure
def scatter_figure(result, mode: int = 1) -> go.Figure:
    """Predicted vs true frequency of ``mode`` per test object, one trace per feature set."""
    part = result.predictions[result.predictions["mode"] == mode]
    if part.empty:
        raise ValueError(f"mode: no predictions for mode {mode}")
    fig = go.Figure()
    for features, sub in part.groupby("features", sort=False):
        fig.add_trace(go.Scatter(x=sub["truth_hz"], y=sub["predicted_hz"], mode="markers", name=str(features),
                                 marker={"size": 5, "color": COLORS.get(str(features)), "opacity": 0.7}))
    lo = float(np.nanmin(part[["truth_hz", "predicted_hz"]].to_numpy()))
    hi = float(np.nanmax(part[["truth_hz", "predicted_hz"]].to_numpy()))
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="prediction = truth",
                             line={"dash": "dot", "color": "black"}))
    fig.update_layout(title=f"Modal frequency {mode}: probe prediction vs the physics",
                      xaxis={"type": "log", "title": "true frequency (Hz, modal analysis)"},
                      yaxis={"type": "log", "title": "predicted frequency (Hz)"})
    n = int(part["object"].nunique())
    return add_caption(fig, [f"Each point is one of {n} test objects: its exact modal frequency {mode} (x, from the "
                             "generator's modal analysis) and a ridge probe's prediction (y) from the named "
                             "features, fitted on the training objects; on the dotted line the prediction is "
                             "exact. geometry+material: shape vector with log E, log rho and nu; geometry: the "
                             "shape vector alone; sound: log-mel mean and max per band; mean: the training mean."])


@escaped_figure
def r2_figure(result) -> go.Figure:
    """R^2 of log f per feature set (x) and mode (colour) with bootstrap intervals."""
    s = result.summary[result.summary["metric"] == "r2"]
    fig = go.Figure()
    for mode, sub in s.groupby("mode"):
        fig.add_trace(go.Bar(x=sub["features"], y=sub["value"], name=f"mode {mode}",
                             error_y={"type": "data", "symmetric": False, "array": sub["value_ci_upper"] - sub["value"],
                                      "arrayminus": sub["value"] - sub["value_ci_lower"]}))
    fig.update_layout(barmode="group", yaxis_range=[min(0.0, float(s["value"].min())), 1],
                      title="How much of log f each feature set explains (R^2 on test objects; higher is better)",
                      xaxis_title="features", yaxis_title="R^2 of log frequency")
    n, level = int(s["n_test"].max()), float(s["level"].iloc[0])
    return add_caption(fig, [f"R^2 of the log modal frequency on {n} held-out objects (1: exact; 0: no better than "
                             f"the training mean); bars: {level:.0%} percentile-bootstrap intervals over test objects, "
                             "the probe fixed."])


def report_figures(result) -> list[go.Figure]:
    """The R^2 bars and the scatter of mode 1."""
    return [r2_figure(result), scatter_figure(result, 1)]
