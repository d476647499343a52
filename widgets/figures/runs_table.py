"""Figures of the runs table and of runs compared (:mod:`workbench.analyses.runs_table`).

- :func:`seed_curves_figure`: a history column per epoch, mean over the seeds of each configuration
  with its t-interval as a band;
- :func:`configurations_figure` and :func:`paired_figure`: a comparison's mean and interval per
  configuration (seeds as dots) and its paired differences, each on its own axis, with configuration
  names wrapped onto several lines so long names never overlap the plot or each other;
- :func:`scalars_figure`: chosen numeric history columns of one run, one panel per column with its own
  y-axis (losses, accuracies and strategy-recorded coefficients have different scales).

Every text from a run (configuration names, run ids, column names) is escaped
(:mod:`widgets.text`); wrapped names are escaped line by line, then joined with ``<br>``.
"""

from __future__ import annotations

import textwrap

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from widgets.figures.error_bars import interval_error_bars
from widgets.figures.result import table_figure
from widgets.text import add_caption, escape_figure, escape_plotly

LABEL_WIDTH = 34  # characters per line of a configuration name on an axis
_PALETTE = qualitative.Plotly


def wrap_label(text: str, width: int = LABEL_WIDTH) -> str:
    """``text`` escaped and wrapped onto lines of at most ``width`` characters, joined by ``<br>``
    (plotly's line break), breaking after the commas between ``name=value`` pairs where it can.

    Examples
    --------
    >>> wrap_label("lr=0.01, optimizer=sgd, strategy=ogm_ge", 24)
    'lr=0.01, optimizer=sgd,<br>strategy=ogm_ge'
    >>> wrap_label("<b>x</b>")
    '&lt;b&gt;x&lt;/b&gt;'
    """
    lines = textwrap.wrap(str(text), width, break_long_words=True, break_on_hyphens=False) or [""]
    return "<br>".join(escape_plotly(line) for line in lines)


def _rgba(color: str, alpha: float) -> str:
    color = color.lstrip("#")
    r, g, b = (int(color[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


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
        template="plotly_white",
        title=f"{metric} per epoch, mean over seeds",
        xaxis_title="epoch",
        yaxis_title=metric,
        legend={"orientation": "h", "y": -0.25},
        height=420,
    )
    escape_figure(fig)
    add_caption(
        fig,
        f"{metric} after each epoch (from the runs' histories), averaged over the seeds of each "
        f"configuration (a configuration: every setting but the seed; named by the settings that "
        f"differ between the chosen runs). Band: the {level:.0%} Student-t interval of that mean over "
        "seeds (none with a single seed). Whether higher is better depends on the column: accuracies "
        "yes, losses no.",
    )
    return fig


def _row_labels(frame: pd.DataFrame, column: str) -> tuple[list[int], list[str]]:
    names = list(dict.fromkeys(frame[column]))
    return list(range(len(names))), names


def _ticks(fig: go.Figure, labels: list[str], n_lines: int) -> None:
    """Configuration names on the y-axis, wrapped and escaped per line (set after escape_figure)."""
    fig.update_yaxes(
        tickmode="array",
        tickvals=list(range(len(labels))),
        ticktext=labels,
        automargin=True,
        autorange="reversed",
        range=None,
    )
    fig.update_layout(height=max(300, (22 * n_lines + 30) * max(1, len(labels)) + 160))


def configurations_figure(comparison, *, metric: str = "acc_fused") -> go.Figure:
    """Mean of ``metric`` per configuration with its t-interval (diamonds and bars) and each seed (dots).

    Examples
    --------
    >>> fig = configurations_figure(cmp, metric="final_train_loss")   # doctest: +SKIP
    """
    if metric not in set(comparison.summary["metric"]):
        raise ValueError(
            f"metric {metric!r} not in the comparison; available: {comparison.metrics()}"
        )
    summary = comparison.summary[comparison.summary["metric"] == metric]
    runs = comparison.runs[comparison.runs["metric"] == metric]
    rows, names = _row_labels(summary, "config")
    where = dict(zip(names, rows, strict=True))
    level = f"{comparison.level:.0%}"
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=summary["mean"],
            y=summary["config"].map(where),
            mode="markers",
            name=f"mean, {level} CI",
            marker={"size": 11, "symbol": "diamond", "color": _PALETTE[0]},
            error_x=interval_error_bars(summary, "mean", fill=0.0),
            customdata=summary[["n", "sd"]],
            hovertemplate="mean %{x:.4f}<br>n %{customdata[0]}, sd %{customdata[1]:.4f}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=runs["value"],
            y=runs["config"].map(where),
            mode="markers",
            name="one seed",
            marker={"size": 7, "opacity": 0.55, "color": _PALETTE[1]},
            text=runs["seed"].astype(str),
            hovertemplate="seed %{text}: %{x:.4f}<extra></extra>",
        )
    )
    fig.update_layout(
        template="plotly_white",
        title=f"{metric}: mean over seeds per configuration",
        xaxis_title=metric,
        legend={"orientation": "h", "y": -0.2},
    )
    escape_figure(fig)
    wrapped = [wrap_label(n) for n in names]
    _ticks(fig, wrapped, max(w.count("<br>") + 1 for w in wrapped) if wrapped else 1)
    add_caption(
        fig,
        f"{metric} of each configuration: diamond and bar, the mean over its seeds with the {level} "
        "Student-t interval (none with one seed); dots, the individual seeds. Configurations are named "
        f"by the settings that differ between the chosen runs. {_direction(metric)}",
    )
    return fig


def _direction(metric: str) -> str:
    if "loss" in metric:
        return "Lower is better."
    if "acc" in metric:
        return "Higher is better."
    return "Which way is better depends on the metric."


def paired_figure(comparison, *, metric: str = "acc_fused") -> go.Figure:
    """Paired differences B − A of ``metric`` on the seeds two configurations share, with their t-interval.

    Each row is named ``B`` over ``− A`` on separate, wrapped lines, so long names stay readable.

    Examples
    --------
    >>> fig = paired_figure(cmp, metric="acc_fused")   # doctest: +SKIP
    """
    paired = comparison.paired[comparison.paired["metric"] == metric]
    level = f"{comparison.level:.0%}"
    fig = go.Figure()
    labels = [
        f"{wrap_label(b)}<br><b>−</b> {wrap_label(a)}"
        for a, b in zip(paired["config_a"], paired["config_b"], strict=True)
    ]
    fig.add_trace(
        go.Scatter(
            x=paired["mean_diff"],
            y=list(range(len(paired))),
            mode="markers",
            name=f"mean paired difference, {level} CI",
            marker={"size": 11, "color": _PALETTE[2]},
            error_x=interval_error_bars(paired, "mean_diff", fill=0.0),
            customdata=paired[["n", "seeds", "p_value"]],
            hovertemplate="%{x:+.4f}<br>n %{customdata[0]} (seeds %{customdata[1]}), "
            "p %{customdata[2]:.3g}<extra></extra>",
        )
    )
    fig.add_vline(x=0, line_dash="dot", line_color="grey")
    fig.update_layout(
        template="plotly_white",
        title=f"Paired difference of {metric} (B − A)",
        xaxis_title=f"Δ {metric}",
        legend={"orientation": "h", "y": -0.2},
        showlegend=True,
    )
    escape_figure(fig)
    _ticks(fig, labels, max((lab.count("<br>") + 1 for lab in labels), default=1))
    if paired.empty:
        fig.add_annotation(
            text="no two configurations of one dataset share a seed",
            x=0.5,
            y=0.5,
            xref="paper",
            yref="paper",
            showarrow=False,
        )
    add_caption(
        fig,
        f"Each row: configuration B (upper lines) minus configuration A (after −) in {metric}, on the "
        f"seeds both have (same split and initialisation, so split-to-split variance cancels); dot and "
        f"bar: the mean difference and its {level} Student-t interval. > 0: B scores higher. "
        f"An interval that includes 0 (dotted line) shows no difference. {_direction(metric)}",
    )
    return fig


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
        template="plotly_white",
        title=title,
        showlegend=False,
        height=170 * max(1, len(columns)) + 120,
    )
    fig.update_xaxes(title_text="epoch", row=max(1, len(columns)), col=1)
    escape_figure(fig)
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
