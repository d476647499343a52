"""Figures of a :class:`workbench.analyses.fairness.FairnessResult`: per-group bars with bootstrap error
bars, the disparity summary and the modality-by-group view. Pure functions: result -> figure.

Example
-------
>>> fig = group_metric_figure(result, "accuracy", "sex")  # doctest: +SKIP
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from widgets.text import add_caption, escape_plotly, escaped_figure

FLAG_COLOR, OK_COLOR = "#bbbbbb", "#3b6fb6"
# which way is good, per metric and per disparity (they share one axis in the disparity chart)
HIGHER_BETTER = ("accuracy", "balanced_accuracy", "auc", "tpr", "worst_group_accuracy", "es_auc")
LOWER_BETTER = ("fpr", "ece", "demographic_parity_difference", "equalized_odds_difference", "accuracy_gap", "auc_gap")


def direction(metric: str) -> str:
    """``"higher is better"``, ``"lower is better"`` or a neutral phrase for ``metric``.

    Examples
    --------
    >>> direction("tpr_2"), direction("ece"), direction("selection_rate")
    ('higher is better', 'lower is better', 'neither direction is better by itself')
    """
    base = str(metric).rsplit("_", 1)[0] if str(metric).rsplit("_", 1)[-1].isdigit() else str(metric)
    if base in HIGHER_BETTER:
        return "higher is better"
    if base in LOWER_BETTER:
        return "lower is better"
    return "neither direction is better by itself"


def _errors(part: pd.DataFrame) -> dict:
    lower, upper = part["value_ci_lower"], part["value_ci_upper"]
    return dict(type="data", symmetric=False, array=(upper - part["value"]).clip(lower=0),
                arrayminus=(part["value"] - lower).clip(lower=0), visible=bool(lower.notna().any()))


@escaped_figure
def group_metric_figure(result, metric: str = "accuracy", attribute: str | None = None) -> go.Figure:
    """One bar per group with its bootstrap interval; flagged groups grey, overall as a line."""
    part = result.metric_by_group(metric, attribute).reset_index()
    colors = [FLAG_COLOR if f else OK_COLOR for f in part["flag"]]
    labels = [f"{g} (n={n}{', ' + f if f else ''})" for g, n, f in zip(part["group"], part["n"], part["flag"], strict=True)]
    fig = go.Figure(go.Bar(x=labels, y=part["value"], error_y=_errors(part), marker_color=colors,
                           hovertemplate="%{x}<br>" + escape_plotly(metric) + " %{y:.3f}<extra></extra>"))
    overall = result.overall.set_index("metric")
    if metric in overall.index and metric != "n":
        fig.add_hline(y=float(overall.loc[metric, "value"]), line_dash="dash", annotation_text="overall")
    attr = attribute or result.attributes[0]
    fig.update_layout(title=f"{metric} by {attr} ({result.params['level']:.0%} bootstrap CI)",
                      yaxis_title=metric)
    add_caption(fig, f"{metric} of the fused model within each group of {attr} ({direction(metric)}); error bars: "
                     f"{result.params['level']:.0%} percentile bootstrap interval, resampling within the group. "
                     "Grey bars: groups too small or with one class (flagged, left out of the disparities); "
                     "dashed line: all groups together.")
    return fig


@escaped_figure
def disparity_figure(result, attribute: str | None = None) -> go.Figure:
    """Disparity metrics of one attribute as a dot-and-interval chart."""
    attr = attribute or result.attributes[0]
    part = result.disparities[result.disparities["attribute"] == attr]
    fig = go.Figure(go.Scatter(x=part["value"], y=part["metric"], mode="markers",
                               error_x=_errors(part), marker=dict(size=10, color=OK_COLOR)))
    excluded = part["excluded"].iloc[0] if len(part) else ""
    note = f" (excluded: {excluded})" if excluded else ""
    fig.update_layout(title=f"Disparities over {attr}{note}", xaxis_title="value")
    add_caption(fig, disparity_caption(result, attr))
    return fig


def disparity_caption(result, attribute: str) -> str:
    """Caption of the disparities of ``attribute`` (interactive and paper)."""
    part = result.disparities[result.disparities["attribute"] == attribute]
    ways = "; ".join(f"{m}: {direction(m).split(' is ')[0]}" for m in dict.fromkeys(part["metric"]))
    return (f"Disparities of the fused model between the groups of {attribute}; the metrics share one axis but "
            f"not one direction ({ways} is better). 0 is parity for the differences and gaps. Error "
            f"bars: {result.params['level']:.0%} intervals (simultaneous bootstrap of the pairwise "
            "differences for the max-min gaps).")


@escaped_figure
def modality_by_group_figure(result, metric: str = "accuracy", attribute: str | None = None) -> go.Figure:
    """Grouped bars: each modality's unimodal metric (accuracy, p_true, gap, shapley) per group."""
    attr = attribute or result.attributes[0]
    mbg = result.modality_by_group
    part = mbg[(mbg["attribute"] == attr) & (mbg["metric"] == metric)]
    fig = go.Figure()
    for m, sub in part.groupby("modality", sort=False):
        fig.add_bar(name=m, x=sub["group"], y=sub["value"], error_y=_errors(sub))
    fig.update_layout(barmode="group", title=f"Unimodal {metric} by {attr}", yaxis_title=metric,
                      legend_title_text="modality")
    meaning = {"accuracy": "share classified correctly by the modality's own head (higher is better)",
               "p_true": "mean probability the modality's head gives the true class (higher is better)",
               "gap": "mean p_true of the modality minus the mean p_true of the others (> 0: the modality is "
                      "surer than the rest)",
               "shapley": "mean Shapley value, log-loss reduction in nats (> 0: the modality helps)"}
    add_caption(fig, f"Per group of {attr} and modality: {meaning.get(metric, metric)}. Error bars: "
                     f"{result.params['level']:.0%} bootstrap intervals. A modality that is much weaker in one "
                     "group than in the others is where the model leans on the other modalities.")
    return fig


def report_figures(result) -> list[go.Figure]:
    """Figures the HTML report shows for a saved ``fairness`` result."""
    figs = []
    for attr in result.attributes:
        figs += [group_metric_figure(result, "accuracy", attr), disparity_figure(result, attr)]
    if not result.modality_by_group.empty:
        figs.append(modality_by_group_figure(result, "accuracy", result.attributes[0]))
    return figs
