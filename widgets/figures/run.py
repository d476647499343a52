"""Figures of a training run: learning curves and accuracy per modality."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from widgets.text import escape_frame, escaped_figure


@escaped_figure
def history_figure(history: pd.DataFrame, *, title: str = "Training history") -> go.Figure:
    """Loss and accuracy per epoch (training and held-out), plus held-out unimodal accuracy."""
    acc_cols = [c for c in history.columns if c.endswith("_acc") or c.startswith("heldout_acc_")]
    long = history.melt(id_vars="epoch", value_vars=acc_cols, var_name="series", value_name="accuracy")
    long["series"] = long["series"].str.replace("heldout_acc_", "unimodal: ", regex=False)
    fig = px.line(escape_frame(long), x="epoch", y="accuracy", color="series", title=title, markers=False)
    fig.update_layout(yaxis_range=[0, 1.02], legend_title_text="", template="plotly_white")
    return fig


@escaped_figure
def accuracy_figure(accuracy: pd.DataFrame, *, split: str = "test", title: str | None = None) -> go.Figure:
    """Bar chart of a run's headline score per model on one split (``Run.accuracy()``: fused and
    unimodal accuracy for classification, top-1 retrieval accuracy per direction for alignment)."""
    part = accuracy[accuracy["split"] == split].copy()
    if "kind" not in part:  # tables from before Task.score_table
        part["kind"] = part["model"].map(lambda m: "fused" if m == "fused" else "unimodal head")
    measure = str(part["measure"].iloc[0]) if "measure" in part and len(part) else "accuracy"
    label = "Accuracy" if measure == "accuracy" else measure[0].upper() + measure[1:]
    fig = px.bar(escape_frame(part), x="model", y="accuracy", color="kind", text=part["accuracy"].map("{:.3f}".format),
                 title=title or f"{label} on the {split} split", range_y=[0, 1.05], labels={"accuracy": measure})
    fig.update_layout(template="plotly_white", legend_title_text="")
    return fig


def show_epochs(fig: go.Figure, epochs: tuple[int, int] | None) -> go.Figure:
    """Zoom a :func:`history_figure` onto the closed epoch range ``epochs`` (the full range when ``None``).

    Only the x-axis range changes, so a control re-draws without rebuilding the figure.

    Examples
    --------
    >>> import pandas as pd
    >>> h = pd.DataFrame({"epoch": [1, 2, 3], "train_acc": [0.5, 0.6, 0.7]})
    >>> show_epochs(history_figure(h), (2, 3)).layout.xaxis.range
    (1.5, 3.5)
    """
    if epochs is None:
        fig.update_xaxes(range=None, autorange=True)
    else:
        fig.update_xaxes(range=[epochs[0] - 0.5, epochs[1] + 0.5], autorange=False)
    return fig


@escaped_figure
def runs_accuracy_figure(accuracies: dict[str, pd.DataFrame], *, split: str = "test",
                         title: str | None = None) -> go.Figure:
    """Fused and unimodal accuracy of several runs side by side (grouped bars, one colour per run).

    Parameters
    ----------
    accuracies : dict of str to DataFrame
        Run id -> its accuracy table (``Run.accuracy()``: columns ``split, model, accuracy``).
    split : str
        Which split to compare.

    Examples
    --------
    >>> import pandas as pd
    >>> acc = pd.DataFrame({"split": ["test"] * 2, "model": ["fused", "a"], "accuracy": [0.9, 0.7]})
    >>> len(runs_accuracy_figure({"r1": acc, "r2": acc}).data)
    2
    """
    frames = [acc[acc["split"] == split].assign(run=run_id) for run_id, acc in accuracies.items()]
    long = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["model", "accuracy", "run"])
    fig = px.bar(escape_frame(long), x="model", y="accuracy", color="run", barmode="group", range_y=[0, 1.05],
                 text=long["accuracy"].map("{:.3f}".format),
                 title=title or f"Accuracy per modality on the {split} split, run by run")
    fig.update_layout(template="plotly_white", legend_title_text="run")
    return fig
