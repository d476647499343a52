"""Sensitivity view of a hyperparameter search (:class:`workbench.jobs.tune.TuneResult`).

One figure per hyperparameter: the validation metric of every complete trial against its
setting (diamond: mean over seeds; bar: the range of the seeds), from ``result.sensitivity()``.
Registered in :mod:`widgets.registry` (the result lives in ``workbench.jobs``, not ``analyses``).
"""

from __future__ import annotations

import plotly.graph_objects as go

from widgets.text import escaped_figure


def caption(result, name: str) -> str:
    """What the sensitivity figure of ``name`` shows (shared with :mod:`widgets.paper.tune`)."""
    better = "higher" if result.direction == "maximize" else "lower"
    return (f"Validation {result.metric} ({better} is better) of each complete trial of study {result.study_name} "
            f"against {name}: diamond, mean over the trial's seeds; bar, the range of the seeds. "
            "Never the calibration or test split.")


@escaped_figure
def sensitivity_figure(result, name: str) -> go.Figure:
    """The validation metric against hyperparameter ``name`` (one point per trial, seeds as a range)."""
    if name not in result.hyperparameters():
        raise ValueError(f"name: {name!r} is not a hyperparameter of this study ({', '.join(result.hyperparameters())})")
    t = result.sensitivity()
    t = t[t["hyperparameter"] == name]
    fig = go.Figure(go.Scatter(
        x=t["setting"], y=t["mean"], mode="markers", marker={"symbol": "diamond", "size": 9},
        error_y={"type": "data", "symmetric": False, "array": t["seed_max"] - t["mean"],
                 "arrayminus": t["mean"] - t["seed_min"]},
        customdata=t[["number", "n_seeds"]], name="trial",
        hovertemplate="trial %{customdata[0]}: %{x} -> %{y:.4f} (%{customdata[1]} seeds)<extra></extra>"))
    fig.update_layout(title=f"{result.metric} against {name}", xaxis_title=name,
                      yaxis_title=f"validation {result.metric}",
                      annotations=[{"text": caption(result, name), "xref": "paper", "yref": "paper", "x": 0,
                                    "y": -0.28, "showarrow": False}])
    return fig


def report_figures(result) -> list[go.Figure]:
    """One sensitivity figure per hyperparameter."""
    return [sensitivity_figure(result, name) for name in result.hyperparameters()]
