"""Figures of a conformal Shapley analysis (:class:`workbench.analyses.shapley.ShapleyResult`).

Forest plot of per-modality intervals (dataset level or one sample), heat map of the
coalition values, and the accuracy of modality selection against the number of modalities.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from widgets.text import add_caption, escape_plotly, escaped_figure


def legend_key(fig: go.Figure, name: str, color: str, width: float = 3.0) -> None:
    """A legend entry (a short line in ``color``) for a trace drawn only as error bars, whose own
    invisible marker would give an invisible legend key."""
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", line={"color": color, "width": width}, name=name,
                             hoverinfo="skip"))


def _finite(v: pd.Series, fallback: float) -> np.ndarray:
    return np.where(np.isfinite(v.to_numpy(float)), v.to_numpy(float), fallback)


@escaped_figure
def forest_figure(modalities: pd.DataFrame, *, title: str | None = None,
                  value_label: str = "log-loss reduction") -> go.Figure:
    """Per modality: marginal conformal interval (thin bar) and mean with its t-interval (dot, thick bar).

    ``modalities`` is ``result.modalities`` or :func:`workbench.analyses.shapley.intervals_for_alpha`'s table.
    """
    part = modalities.iloc[::-1]
    span = np.nanmax(np.abs(part[["lower", "upper"]].replace([np.inf, -np.inf], np.nan).to_numpy())) or 1.0
    lo, hi = _finite(part["lower"], -1.2 * span), _finite(part["upper"], 1.2 * span)
    alpha = float(part["alpha"].iloc[0])
    # results saved before the convention have no level column: their mean interval was at 1 - alpha
    level = float(part["level"].iloc[0]) if "level" in part else 1 - alpha
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=(lo + hi) / 2, y=part["modality"], mode="markers", marker={"size": 1, "opacity": 0},
        error_x={"type": "data", "symmetric": False, "array": hi - (lo + hi) / 2, "arrayminus": (lo + hi) / 2 - lo,
                 "thickness": 2, "width": 6, "color": "#9bb7d4"},
        name=f"conformal interval ({1 - alpha:.0%})", showlegend=False,
        customdata=np.c_[part["lower"], part["upper"], part["coverage"]],
        hovertemplate="%{y}: [%{customdata[0]:.3f}, %{customdata[1]:.3f}], test coverage %{customdata[2]:.3f}<extra></extra>",
    ))
    fig.add_trace(go.Scatter(
        x=part["mean"], y=part["modality"], mode="markers", marker={"size": 9, "color": "#1f4e79"},
        error_x={"type": "data", "symmetric": False, "array": part["mean_ci_upper"] - part["mean"],
                 "arrayminus": part["mean"] - part["mean_ci_lower"], "thickness": 4, "width": 0},
        name=f"mean Shapley value ({level:.0%} t-interval)", customdata=part[["p_value"]],
        hovertemplate="%{y}: mean %{x:.3f}, p = %{customdata[0]:.2g}<extra></extra>",
    ))
    legend_key(fig, f"conformal interval ({1 - alpha:.0%})", "#9bb7d4")
    fig.add_vline(x=0, line_dash="dot", line_color="grey")
    fig.update_layout(title=title or "Shapley value per modality: intervals",
                      xaxis_title=f"Shapley value ({value_label}, nats)", legend={"orientation": "h", "y": -0.2})
    add_caption(fig, f"Each modality's Shapley value: its share of the {value_label} (nats) the model gets from "
                     f"all modalities together; > 0: the modality helps, and larger is better. Dot and thick bar: "
                     f"mean over test samples with its {level:.0%} t-interval (an interval that excludes 0 says the "
                     f"modality helps on average). Thin bar: marginal conformal interval, where a new sample's value "
                     f"falls with probability {1 - alpha:.0%}.")
    return fig


# what a coalition's value is, per value method (the x-axis of the forest plot)
VALUE_LABELS = {"retrieval": "log-probability of retrieving the true partner, over uniform"}


@escaped_figure
def sample_forest_figure(values: pd.DataFrame, sample: int, *, title: str | None = None) -> go.Figure:
    """One test sample: its Shapley value per modality with marginal and conditional intervals."""
    part = values[(values["sample"] == sample) & (values["split"] == "test")]
    if part.empty:
        raise ValueError(f"sample {sample} is not a test sample of this result")
    part = part.iloc[::-1]
    fig = go.Figure()
    for name, lo_col, hi_col, color, offset in (("marginal interval", "lower", "upper", "#9bb7d4", 0.12),
                                                 ("conditional interval", "cond_lower", "cond_upper", "#e69f00", -0.12)):
        y = np.arange(len(part)) + offset
        lo, hi = part[lo_col].to_numpy(float), part[hi_col].to_numpy(float)
        fig.add_trace(go.Scatter(x=(lo + hi) / 2, y=y, mode="markers", marker={"size": 1, "opacity": 0}, name=name,
                                 showlegend=False,
                                 error_x={"type": "data", "symmetric": False, "array": (hi - lo) / 2,
                                          "arrayminus": (hi - lo) / 2, "color": color, "thickness": 3}))
        legend_key(fig, name, color)
    fig.add_trace(go.Scatter(x=part["phi"], y=np.arange(len(part)), mode="markers", name="Shapley value",
                             marker={"size": 10, "color": "#1f4e79", "symbol": "diamond"}))
    fig.add_vline(x=0, line_dash="dot", line_color="grey")
    fig.update_layout(title=title or f"Test sample {sample} (label {part['y'].iloc[0]})",
                      yaxis={"tickvals": list(range(len(part))), "ticktext": list(part["modality"])},
                      xaxis_title="Shapley value (nats)", legend={"orientation": "h", "y": -0.2})
    add_caption(fig, "One test sample's Shapley value per modality (diamond; log-loss reduction in nats, > 0: the "
                     "modality helps on this sample). Blue: marginal conformal interval (valid on average over "
                     "samples); orange: conditional interval, from quantile regression on the sample's embedding (its "
                     "width adapts to the sample). Both are prediction intervals of the sample's value.")
    return fig


@escaped_figure
def coalition_heatmap(coalitions: pd.DataFrame, modalities: list[str], *, split: str = "test",
                      metric: str = "value") -> go.Figure:
    """Coalition lattice as a heat map: rows = coalitions by size, columns = members, colour = value."""
    part = coalitions[coalitions["split"] == split].sort_values(["size", metric])
    members = part[[f"has_{m}" for m in modalities]].to_numpy(float)
    z = np.where(members > 0, part[[metric]].to_numpy(), np.nan)
    fig = go.Figure(go.Heatmap(
        z=z, x=modalities, y=part["coalition"], colorscale="Viridis", colorbar={"title": metric},
        hovertemplate="%{y}<br>" + escape_plotly(metric) + " %{z:.3f}<extra></extra>"))
    fig.update_layout(title=f"Coalition {metric} ({split} split)",
                      height=max(350, 14 * len(part) + 120), yaxis={"tickfont": {"size": 9}})
    what = ("mean log-loss reduction over the empty coalition (the class prior), in nats; higher is better"
            if metric == "value" else metric)
    add_caption(fig, f"Each row a coalition (a subset of the modalities, by size); coloured cells mark its "
                     f"members, the colour is the coalition's {what}, on the {split} split.")
    return fig


@escaped_figure
def selection_figure(selection: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """Test accuracy (Wilson band at the result's ``level``) against the number of modalities used, per rule."""
    fig = go.Figure()
    for rule, part in selection.groupby("rule", sort=False):
        fig.add_trace(go.Scatter(
            x=part["q"], y=part["accuracy"], mode="lines+markers", name=str(rule),
            error_y={"type": "data", "symmetric": False, "array": part["accuracy_ci_upper"] - part["accuracy"],
                     "arrayminus": part["accuracy"] - part["accuracy_ci_lower"]}))
    fig.update_layout(title=title or "Accuracy of the selected modalities",
                      xaxis_title="modalities used (q)", yaxis_title="test accuracy")
    add_caption(fig, "Test accuracy (higher is better) when each sample uses only the q modalities a rule "
                     "selects for it; error bars: Wilson intervals. A rule whose curve reaches the all-modality "
                     "accuracy at small q saves modalities at no cost.")
    return fig


def report_figures(result) -> list[go.Figure]:
    """The figures an HTML report shows for a saved :class:`ShapleyResult`."""
    label = VALUE_LABELS.get(result.value_method, "log-loss reduction")
    figures = [forest_figure(result.modalities, title=f"Shapley intervals ({result.value_method} values)",
                             value_label=label)]
    if not result.selection.empty:  # retrieval Shapley has no modality selection
        figures.append(selection_figure(result.selection))
    return [*figures, coalition_heatmap(result.coalitions, list(result.modality_names))]
