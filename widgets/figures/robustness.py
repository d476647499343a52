"""Figures of a robustness analysis (:class:`workbench.analyses.robustness.RobustnessResult`).

Robustness curves (metric against missing rate, and against SNR, a line per corrupted modality
with its bootstrap band), a heat map of the metrics per presence pattern, and, when computed, the
one-model-versus-a-model-per-subset differences with their intervals over seeds. Found by name
(``workbench.analyses.robustness`` -> this module).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from widgets.figures.captions import add_caption
from widgets.text import escaped_figure

METRIC_LABELS = {"accuracy": "accuracy", "macro_f1": "macro-F1", "kappa": "Cohen's kappa"}



@escaped_figure
def curves_figure(curves: pd.DataFrame, *, perturbation: str = "missing", metric: str = "accuracy") -> go.Figure:
    """``metric`` against the severity of ``perturbation`` (missing rate or SNR), a line per
    corrupted modality with its bootstrap band; higher is better."""
    part = curves[(curves["perturbation"] == perturbation) & (curves["metric"] == metric)]
    if part.empty:
        raise ValueError(f"no {perturbation!r} curves for metric {metric!r} in this result")
    fig = go.Figure()
    for modality, sub in part.groupby(line_labels(part), sort=False):
        sub = sub.sort_values("severity")
        x = sub["severity"].to_numpy()
        fig.add_trace(go.Scatter(x=np.r_[x, x[::-1]], y=np.r_[sub["value_ci_upper"], sub["value_ci_lower"][::-1]],
                                 fill="toself", line={"width": 0}, opacity=0.2, showlegend=False, hoverinfo="skip",
                                 name=f"{modality} band"))
        fig.add_trace(go.Scatter(x=x, y=sub["value"], mode="lines+markers", name=str(modality)))
    label = METRIC_LABELS.get(metric, metric)
    title, xtitle = curve_axis_titles(perturbation, label)
    fig.update_layout(title=title, xaxis_title=xtitle, yaxis_title=f"{label} (higher is better)",
                      legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"})
    if perturbation == "noise":
        fig.update_xaxes(autorange="reversed")
    return add_caption(fig, [curves_caption(part, perturbation)])


def line_labels(part: pd.DataFrame) -> pd.Series:
    """One curve per label: the corrupted modality, and for faults on the raw signals also the
    fault and how the model was told (shared with :mod:`widgets.paper.robustness`)."""
    if "fault" not in part or part["fault"].isna().all():
        return part["modality"].astype(str)
    return part["modality"].astype(str) + ": " + part["fault"].astype(str) + " (mask: " + part["masking"].astype(str) + ")"


def curve_axis_titles(perturbation: str, label: str) -> tuple[str, str]:
    """Title and x-axis title of a robustness curve (shared with :mod:`widgets.paper.robustness`)."""
    if perturbation == "missing":
        return f"Robustness to missing modalities: {label}", "missing rate (share of samples without it)"
    if perturbation == "fault":
        return f"Robustness to sensor faults on the raw signal: {label}", "share of epochs hit by the fault"
    return f"Robustness to noise: {label}", "signal-to-noise ratio (dB; right: noisier)"


def curves_caption(part: pd.DataFrame, perturbation: str) -> str:
    """The caption of a robustness curve (shared with :mod:`widgets.paper.robustness`)."""
    level, n = float(part["level"].iloc[0]), int(part["n"].iloc[0])
    what = {"missing": "each modality missing completely at random ('all': every modality independently)",
            "fault": ("a fault on one modality's raw signal before its features are computed; mask: none = the "
                      "model is told nothing, true = epochs left without information are masked, std_rule = the "
                      "CoRe-Sleep std rule masks the epochs it rejects")}.get(perturbation,
                                                                              "additive Gaussian noise on one modality")
    return f"One trained model, no retraining: {what}. {n} test samples; bands: {level:.0%} bootstrap intervals over samples."


@escaped_figure
def patterns_figure(patterns: pd.DataFrame) -> go.Figure:
    """Heat map: every presence pattern (rows, by size) x metric (columns)."""
    rows, metrics, values, text = patterns_table(patterns)
    fig = go.Figure(go.Heatmap(z=values, x=metrics, y=rows, zmin=0, zmax=1, colorscale="Viridis",
                               text=text, texttemplate="%{text}", colorbar={"title": "score"}))
    fig.update_layout(title="The one model on every presence pattern (higher is better)",
                      xaxis_title="metric", yaxis_title="modalities present", height=max(320, 24 * len(rows) + 160),
                      yaxis={"autorange": "reversed"})
    return add_caption(fig, [patterns_caption(patterns)])


def patterns_table(patterns: pd.DataFrame) -> tuple[list[str], list[str], np.ndarray, list[list[str]]]:
    """Presence patterns (rows, by size) x metrics: (rows, metrics, values, cell texts with intervals)."""
    wide = patterns.pivot_table(index=["size", "pattern"], columns="metric", values="value", sort=False)
    wide = wide.sort_index(level="size", sort_remaining=False)
    metrics = [m for m in ("accuracy", "macro_f1", "kappa") if m in wide.columns]
    lo = patterns.pivot_table(index=["size", "pattern"], columns="metric", values="value_ci_lower").reindex(wide.index)
    hi = patterns.pivot_table(index=["size", "pattern"], columns="metric", values="value_ci_upper").reindex(wide.index)
    text = [[f"{wide.loc[i, m]:.3f} [{lo.loc[i, m]:.3f}, {hi.loc[i, m]:.3f}]" for m in metrics] for i in wide.index]
    return [p for _, p in wide.index], metrics, wide[metrics].to_numpy(float), text


def patterns_caption(patterns: pd.DataFrame) -> str:
    """Caption of the presence-pattern heat map (interactive and paper)."""
    level, n = float(patterns["level"].iloc[0]), int(patterns["n"].iloc[0])
    return (f"The one model on every presence pattern: each subset of modalities forced present, the rest masked; "
            f"{n} test samples; scores (higher is better) with {level:.0%} bootstrap intervals in brackets.")


@escaped_figure
def subsets_figure(subsets: pd.DataFrame) -> go.Figure:
    """One model (modality dropout) minus a model per subset, per pattern, with t-intervals over seeds."""
    part = subsets.iloc[::-1]
    fig = go.Figure(go.Scatter(
        x=part["difference"], y=part["pattern"], mode="markers", marker={"size": 9, "color": "#1f4e79"},
        error_x={"type": "data", "symmetric": False, "array": (part["difference_ci_upper"] - part["difference"]).fillna(0),
                 "arrayminus": (part["difference"] - part["difference_ci_lower"]).fillna(0)}, name="difference"))
    fig.add_vline(x=0, line_dash="dot", line_color="grey")
    level, seeds = float(subsets["level"].iloc[0]), int(subsets["n_seeds"].max())
    fig.update_layout(title="One model for every subset vs a model per subset",
                      xaxis_title="test accuracy difference (right: the one model is better)",
                      yaxis_title="modalities present", height=max(300, 26 * len(part) + 160))
    return add_caption(fig, [f"Paired over {seeds} seeds (same split per seed); bars: {level:.0%} "
                                            "t-intervals."])


def report_figures(result) -> list[go.Figure]:
    """Accuracy curves against missing rate and against SNR, the pattern heat map, and the subset
    comparison when present."""
    figures = [curves_figure(result.curves, perturbation=p) for p in ("missing", "noise", "fault")
               if (result.curves["perturbation"] == p).any()]
    if not result.patterns.empty:
        figures.append(patterns_figure(result.patterns))
    if not result.subsets.empty:
        figures.append(subsets_figure(result.subsets))
    return figures
