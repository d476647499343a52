"""Figures of the CLASP analysis (:mod:`workbench.analyses.clasp`).

- Recall@k per 1->1 direction, mean over seeds with its t-interval, chance marked.
- Material probes: accuracy from each modality's embedding and from the raw spectrogram mean.

Found by name (``workbench.analyses.clasp`` -> this module), no registration line.

Example
-------
>>> import pandas as pd
>>> from workbench.analyses.clasp import ClaspResult
>>> row = {"value": 0.2, "value_ci_lower": 0.15, "value_ci_upper": 0.25, "chance": 0.03, "n_seeds": 3, "level": 0.95}
>>> summary = pd.DataFrame([{"kind": "retrieval", "name": "sound->shape R@10", **row},
...                         {"kind": "probe", "name": "z_sound", **row}])
>>> figs = report_figures(ClaspResult(pd.DataFrame(), pd.DataFrame(), summary))
>>> len(figs), figs[0].layout.yaxis.title.text
(2, 'R@10 (share of test queries)')
"""

from __future__ import annotations

import plotly.graph_objects as go

from widgets.figures.captions import add_caption
from widgets.text import escaped_figure


@escaped_figure
def recall_figure(result, metric: str = "R@10") -> go.Figure:
    """Bars of ``metric`` per query -> gallery direction (mean over seeds, t-interval), chance as a line."""
    s, names = recall_rows(result, metric)
    fig = go.Figure(go.Bar(x=names, y=s["value"], error_y={"type": "data", "symmetric": False,
                                                          "array": s["value_ci_upper"] - s["value"],
                                                          "arrayminus": s["value"] - s["value_ci_lower"]}))
    fig.add_hline(y=float(s["chance"].mean()), line_dash="dot", annotation_text="chance")
    n_seeds, level = int(s["n_seeds"].max()), float(s["level"].iloc[0])
    fig.update_layout(
        title=f"CLASP retrieval {result.label}: {metric} per direction (higher is better)".replace("  ", " "),
        xaxis_title="query -> gallery", yaxis_title=f"{metric} (share of test queries)", yaxis_range=[0, 1])
    # a caption beside the chance line's label (a layout annotations list would replace it)
    return add_caption(fig, [recall_caption(metric, n_seeds, level)])


def recall_rows(result, metric: str):
    """The summary rows of ``metric`` (one per direction) and the directions' names."""
    s = result.summary[(result.summary["kind"] == "retrieval") & result.summary["name"].str.endswith(f" {metric}")]
    if s.empty:
        raise ValueError(f"metric: the clasp result has no {metric!r}")
    return s, [n.rsplit(" ", 1)[0] for n in s["name"]]


def recall_caption(metric: str, n_seeds: int, level: float) -> str:
    """Caption of the Recall@k figure (interactive and paper)."""
    return (f"Share of test queries whose partner is in the top {metric[2:]}, mean over {n_seeds} "
            f"seeds (higher is better); bars: {level:.0%} t-interval over seeds; dotted: chance {metric[2:]}/n.")


@escaped_figure
def probe_figure(result) -> go.Figure:
    """Material-probe accuracy per representation (mean over seeds, t-interval), majority-class chance as a line."""
    s = result.summary[result.summary["kind"] == "probe"]
    fig = go.Figure(go.Bar(x=list(s["name"]), y=s["value"], error_y={
        "type": "data", "symmetric": False, "array": s["value_ci_upper"] - s["value"],
        "arrayminus": s["value"] - s["value_ci_lower"]}))
    if not s.empty:
        fig.add_hline(y=float(s["chance"].mean()), line_dash="dot", annotation_text="majority class")
    fig.update_layout(
        title="Material probe accuracy by representation (higher is better)", yaxis_range=[0, 1],
        xaxis_title="representation (z_m: aligned embedding)", yaxis_title="test accuracy")
    return add_caption(fig, [PROBE_CAPTION])


PROBE_CAPTION = ("Material probe: logistic regression fitted on the training split, accuracy on the test split "
                 "(higher is better), mean over seeds with a t-interval; z_m: the aligned embedding of modality m; "
                 "dotted: the majority-class share.")


def recall_metrics(result) -> list[str]:
    """The Recall@k metrics of the result, in order (``["R@1", "R@10"]``)."""
    return list(dict.fromkeys(n.rsplit(" ", 1)[1]
                              for n in result.summary.loc[result.summary["kind"] == "retrieval", "name"]))


def report_figures(result) -> list[go.Figure]:
    """Recall@k at every k of the result, then the probes."""
    return [recall_figure(result, k) for k in recall_metrics(result)] + [probe_figure(result)]
