"""Figures of a training run: learning curves and accuracy per modality."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go


def history_figure(history: pd.DataFrame, *, title: str = "Training history") -> go.Figure:
    """Loss and accuracy per epoch (training and held-out), plus held-out unimodal accuracy."""
    acc_cols = [c for c in history.columns if c.endswith("_acc") or c.startswith("heldout_acc_")]
    long = history.melt(id_vars="epoch", value_vars=acc_cols, var_name="series", value_name="accuracy")
    long["series"] = long["series"].str.replace("heldout_acc_", "unimodal: ", regex=False)
    fig = px.line(long, x="epoch", y="accuracy", color="series", title=title, markers=False)
    fig.update_layout(yaxis_range=[0, 1.02], legend_title_text="", template="plotly_white")
    return fig


def accuracy_figure(accuracy: pd.DataFrame, *, split: str = "test", title: str | None = None) -> go.Figure:
    """Bar chart of fused and unimodal accuracy on one split."""
    part = accuracy[accuracy["split"] == split].copy()
    part["kind"] = part["model"].map(lambda m: "fused" if m == "fused" else "unimodal head")
    fig = px.bar(part, x="model", y="accuracy", color="kind", text=part["accuracy"].map("{:.3f}".format),
                 title=title or f"Accuracy on the {split} split", range_y=[0, 1.05])
    fig.update_layout(template="plotly_white", legend_title_text="")
    return fig
