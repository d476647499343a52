"""Figures of the runs table and of runs' histories (:mod:`workbench.analyses.runs_table`).

- :func:`seed_curves_figure`: a history column per epoch, mean over the seeds of each configuration
  with its t-interval as a band;
- :func:`scalars_figure`: chosen numeric history columns of one run, one panel per column with its own
  y-axis (losses, accuracies and strategy-recorded coefficients have different scales).

A comparison's means and paired differences are drawn by :mod:`widgets.figures.compare`. Every text
from a run (configuration names, run ids, column names) is escaped (:func:`widgets.text.escaped_figure`).
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from widgets.figures.result import table_figure
from widgets.text import add_caption, escaped_figure

_PALETTE = qualitative.Plotly


def _rgba(color: str, alpha: float) -> str:
    color = color.lstrip("#")
    r, g, b = (int(color[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


@escaped_figure
def seed_curves_figure(curves: pd.DataFrame, *, metric: str, level: float = 0.95) -> go.Figure:
    """Mean of ``metric`` over seeds per epoch, one line per configuration, with its ``level`` t-interval band.

    Parameters
    ----------
    curves : DataFrame
        :func:`workbench.analyses.runs_table.seed_curves`.
    metric : str
        The history column the curves are of (axis title, caption).
    level : float
        The curves' confidence level (caption).

    Examples
    --------
    >>> c = pd.DataFrame({"configuration": "a", "epoch": [1, 2], "n": 2, "seeds": "0,1", "mean": [0.5, 0.6],
    ...                   "mean_ci_lower": [0.4, 0.5], "mean_ci_upper": [0.6, 0.7]})
    >>> [t.name for t in seed_curves_figure(c, metric="heldout_acc").data]
    ['a (2 seeds)', 'a: 95% band']
    """
    fig = go.Figure()
    for i, (name, part) in enumerate(curves.groupby("configuration", sort=False)):
        color = _PALETTE[i % len(_PALETTE)]
        n = int(part["n"].max())
        band = part.dropna(subset=["mean_ci_lower", "mean_ci_upper"])
        fig.add_trace(
            go.Scatter(
                x=part["epoch"],
                y=part["mean"],
                mode="lines+markers",
                name=f"{name} ({n} seed{'s' * (n != 1)})",
                legendgroup=name,
                line={"color": color, "width": 2},
                marker={"size": 5},
                customdata=part[["n", "seeds"]],
                hovertemplate="epoch %{x}: %{y:.4f}<br>n %{customdata[0]} (seeds %{customdata[1]})",
            )
        )
        if len(band):
            # one closed polygon (upper edge forward, lower edge back): its legend key is a filled square
            xs = [*band["epoch"], *band["epoch"][::-1]]
            ys = [*band["mean_ci_upper"], *band["mean_ci_lower"][::-1]]
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    fill="toself",
                    mode="lines",
                    line={"width": 0, "color": color},
                    fillcolor=_rgba(color, 0.2),
                    name=f"{name}: {level:.0%} band",
                    legendgroup=name,
                    hoverinfo="skip",
                )
            )
    fig.update_layout(
        title=f"{metric} per epoch, mean over seeds",
        xaxis_title="epoch",
        yaxis_title=metric,
        legend={"orientation": "h", "y": -0.25},
        height=420,
    )
    add_caption(
        fig,
        f"{metric} after each epoch (from the runs' histories), averaged over the seeds of each "
        f"configuration (a configuration: every setting but the seed; named by the settings that "
        f"differ between the chosen runs). Band: the {level:.0%} Student-t interval of that mean over "
        "seeds (none with a single seed). Whether higher is better depends on the column: accuracies "
        "yes, losses no.",
    )
    return fig


@escaped_figure
def scalars_figure(
    history: pd.DataFrame, columns: list[str], *, title: str = "Recorded scalars"
) -> go.Figure:
    """Chosen numeric columns of a run's history per epoch, one panel per column with its own y-axis.

    Examples
    --------
    >>> h = pd.DataFrame({"epoch": [1, 2], "train_loss": [1.0, 0.5], "ogm_k_a": [1.0, 0.9]})
    >>> [t.name for t in scalars_figure(h, ["train_loss", "ogm_k_a"]).data]
    ['train_loss', 'ogm_k_a']
    """
    unknown = [c for c in columns if c not in history.columns]
    if unknown:
        raise ValueError(
            f"columns: {unknown[0]!r} is not a history column; available: {list(history.columns)}"
        )
    columns = columns or [c for c in history.columns if c != "epoch"][:1]
    fig = make_subplots(
        rows=max(1, len(columns)),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06,
        subplot_titles=columns,
    )
    for i, col in enumerate(columns):
        fig.add_trace(
            go.Scatter(
                x=history["epoch"],
                y=history[col],
                mode="lines+markers",
                name=col,
                line={"color": _PALETTE[i % len(_PALETTE)]},
            ),
            row=i + 1,
            col=1,
        )
    fig.update_layout(
        title=title,
        showlegend=False,
        height=170 * max(1, len(columns)) + 120,
    )
    fig.update_xaxes(title_text="epoch", row=max(1, len(columns)), col=1)
    add_caption(
        fig,
        "Each panel: one column of the run's per-epoch history, on its own y-axis. Losses (lower is "
        "better) and accuracies (higher is better) are recorded by the trainer; other columns are "
        "recorded by the training strategy (e.g. OGM-GE's modulation coefficients ogm_k_* and "
        "discrepancy ratios ogm_rho_*); seconds: wall time of the epoch.",
    )
    return fig


def report_figures(result) -> list[go.Figure]:
    """The runs table as a table figure (:class:`workbench.analyses.runs_table.RunsTable`)."""
    from workbench.analyses.runs_table import SHOWN_COLUMNS

    columns = SHOWN_COLUMNS
    return [table_figure(result.runs[columns], title="Runs")]
