"""Figures of a training run: learning curves and accuracy per modality."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from widgets.text import add_caption, escaped_figure


@escaped_figure
def history_figure(history: pd.DataFrame, *, title: str = "Training history") -> go.Figure:
    """Loss and accuracy per epoch (training and held-out), plus held-out unimodal accuracy; a ranking
    run's history (BPR loss, validation Recall@20) by :func:`ranking_history_figure`."""
    if "train_loss" in history and not any(c.endswith("_acc") for c in history.columns):
        return ranking_history_figure(history, title=title)
    acc_cols = [c for c in history.columns if c.endswith("_acc") or c.startswith("heldout_acc_")]
    # graph objects, not plotly express: express took ~0.2 s a call (0.4 s the first), most of a panel's build
    fig = go.Figure([go.Scatter(x=history["epoch"], y=history[col], mode="lines",
                                name=col.replace("heldout_acc_", "unimodal: ", 1),
                                hovertemplate="epoch %{x}: %{y:.4f}<extra>%{fullData.name}</extra>")
                     for col in acc_cols])
    fig.update_layout(title=title, xaxis_title="epoch", yaxis_title="accuracy", yaxis_range=[0, 1.02],
                      legend_title_text="")
    add_caption(fig, "Share of samples classified correctly after each epoch (higher is better). train_acc: the "
                     "fused model on the training batches during the epoch; heldout_acc: the fused model on the "
                     "held-out calibration split (the validation part of the training split when early stopping "
                     "is on); unimodal: m: modality m's own head on the same held-out samples.")
    return fig


@escaped_figure
def ranking_history_figure(history: pd.DataFrame, *, title: str = "Training history") -> go.Figure:
    """A ranking run's BPR loss per epoch and, with early stopping, the validation Recall@20.

    Examples
    --------
    >>> import pandas as pd
    >>> fig = ranking_history_figure(pd.DataFrame({"epoch": [1, 2], "train_loss": [0.6, 0.4]}))
    >>> [t.name for t in fig.data]
    ['train_loss']
    """
    from plotly.subplots import make_subplots

    valid = "valid_recall@20" in history and history["valid_recall@20"].notna().any()
    fig = make_subplots(rows=1, cols=2 if valid else 1, subplot_titles=["BPR loss", "validation Recall@20"][: 1 + valid])
    fig.add_trace(go.Scatter(x=history["epoch"], y=history["train_loss"], name="train_loss", mode="lines+markers"),
                  row=1, col=1)
    if valid:
        part = history.dropna(subset=["valid_recall@20"])
        fig.add_trace(go.Scatter(x=part["epoch"], y=part["valid_recall@20"], name="valid_recall@20",
                                 mode="lines+markers"), row=1, col=2)
    fig.update_layout(title=title, legend_title_text="")
    fig.update_xaxes(title_text="epoch")
    add_caption(fig, "BPR training of a recommender: train_loss is the mean per step of the BPR loss summed over "
                     "the domains, plus the l2, INMO auxiliary and anchor terms (lower is better)"
                + ("; valid_recall@20: Recall@20 of the validation items of the users trained on, mean over the "
                   "domains (higher is better; early stopping keeps the best check)." if valid else "."))
    return fig


@escaped_figure
def accuracy_figure(accuracy: pd.DataFrame, *, split: str = "test", title: str | None = None,
                    base_rate: tuple[str, float] | None = None) -> go.Figure:
    """Bar chart of a run's headline score per model on one split (``Run.accuracy()``: fused and
    unimodal accuracy for classification, top-1 retrieval accuracy per direction for alignment).

    ``base_rate``, ``(majority class, its share of the split)``, draws what always predicting that
    class scores, so a head that only learned the base rate is told apart from a useful one.

    Examples
    --------
    >>> import pandas as pd
    >>> acc = pd.DataFrame({"split": ["test"] * 2, "model": ["fused", "a"], "accuracy": [0.9, 0.7]})
    >>> accuracy_figure(acc, base_rate=("no", 0.6)).layout.shapes[0].y0
    0.6
    """
    part = accuracy[accuracy["split"] == split].copy()
    if "kind" not in part:  # tables from before Task.score_table
        part["kind"] = part["model"].map(lambda m: "fused" if m == "fused" else "unimodal head")
    measure = str(part["measure"].iloc[0]) if "measure" in part and len(part) else "accuracy"
    label = "Accuracy" if measure == "accuracy" else measure[0].upper() + measure[1:]
    fig = _bars(part, "kind", title=title or f"{label} on the {split} split", y_title=measure)
    fig.update_layout(legend_title_text="")
    n = int(part["n"].iloc[0]) if "n" in part and len(part) else None
    what = (f"Share of the {split} split's {n} samples" if n else f"Share of the {split} split's samples")
    if measure == "accuracy":
        text = (f"{what} classified correctly (higher is better): the fused model, and each modality's own "
                "unimodal head trained alongside it.")
    elif set(part["kind"]) <= {"transductive", "inductive"}:  # a ranking run (workbench.tasks.ranking)
        text = (f"{measure} of the {split} items per domain (higher is better; 1 = every test item ranked "
                "first): transductive, users trained on, ranking every item but their training and validation "
                "items; inductive, held-out users folded in from their history without retraining. Users per "
                "bar: " + ", ".join(f"{m} {int(k)}" for m, k in zip(part["model"], part["n"], strict=True)) + ".")
    else:
        text = f"{what} scored by {measure} per model (higher is better)."
    if base_rate is not None and measure == "accuracy":
        label_, rate = base_rate
        fig.add_hline(y=rate, line_dash="dash", line_color="grey")
        text += (f" Dashed line: always predicting the majority class ({label_}) scores {rate:.3f}; a head at "
                 "that line has learned only the base rate.")
    add_caption(fig, text)
    return fig


def _bars(frame: pd.DataFrame, color: str, *, title: str, y_title: str, barmode: str = "relative") -> go.Figure:
    """Bars of ``frame``'s accuracy per model, one trace (colour) per value of ``color``, labelled with
    their values: what ``px.bar(x="model", y="accuracy", color=color, text=...)`` draws, without its
    ~0.2 s a call."""
    fig = go.Figure([go.Bar(x=part["model"], y=part["accuracy"], name=str(key),
                            text=part["accuracy"].map("{:.3f}".format), textposition="auto",
                            hovertemplate="%{x}: %{y:.4f}<extra>%{fullData.name}</extra>")
                     for key, part in frame.groupby(color, sort=False)])
    fig.update_layout(title=title, barmode=barmode, xaxis_title="model", yaxis_title=y_title, yaxis_range=[0, 1.05])
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
    fig = _bars(long, "run", title=title or f"Accuracy per modality on the {split} split, run by run",
                y_title="accuracy", barmode="group")
    fig.update_layout(legend_title_text="run")
    add_caption(fig, f"Share of the {split} split's samples classified correctly (higher is better), fused model "
                     "and each modality's unimodal head; one bar colour per run.")
    return fig
