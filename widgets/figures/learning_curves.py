"""Figures of learning curves per coalition (:class:`workbench.analyses.learning_curves.LearningCurvesResult`).

Two views of Lu 2023's two conditions on the user's data:

- :func:`learning_curve_figure`: the test metric against the training size n (log x) for each
  coalition, with the result's t intervals over seeds as bands. The full coalition and the best
  unimodal one are drawn thick, the other singletons and the ``top`` best remaining coalitions
  are shown, every other coalition is in the legend only (click to show), so 63 coalitions stay
  readable. The crossover (the smallest n from which the full model stays ahead) is marked.
- :func:`connection_figure`: per pair of modalities, the cross-validated R^2 of the target's
  embedding predicted from the source's (connection), beside the pair's accuracy gain over its
  best member (heterogeneity, as the analysis defines it).

Pure functions ``result -> go.Figure`` drawing the result's own tables; found by name
(``workbench.analyses.learning_curves`` -> this module), no registration line.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from widgets.figures.captions import add_caption
from widgets.text import escaped_figure

METRICS = {"accuracy": ("test accuracy (share correct)", True), "log_loss": ("test log loss (nats)", False)}
def full_coalition(result) -> str:
    """The coalition of every modality (the largest in ``result.curves``).

    Examples
    --------
    >>> import pandas as pd
    >>> from types import SimpleNamespace
    >>> full_coalition(SimpleNamespace(curves=pd.DataFrame({"coalition": ["a", "a+b"], "size": [1, 2]})))
    'a+b'
    """
    c = result.curves
    return str(c.loc[c["size"].idxmax(), "coalition"])


def best_unimodal(result) -> str:
    """The best single modality as the analysis chose it (``result.best_unimodal``); for results saved
    before that field existed, the singleton with the highest mean accuracy over sizes and seeds, the
    analysis's own rule.

    Examples
    --------
    >>> import pandas as pd
    >>> from types import SimpleNamespace
    >>> runs = pd.DataFrame({"coalition": ["a", "b", "a+b"], "size": [1, 1, 2], "accuracy": [0.6, 0.7, 0.9]})
    >>> best_unimodal(SimpleNamespace(best_unimodal=None, runs=runs))
    'b'
    """
    name = getattr(result, "best_unimodal", None)
    if name:
        return str(name)
    runs = result.runs[result.runs["size"] == 1]
    return str(runs.groupby("coalition")["accuracy"].mean().idxmax())


def shown_coalitions(result, *, metric: str = "accuracy", top: int = 3) -> list[str]:
    """The coalitions drawn visibly: the full one, every singleton, and the ``top`` best others at the largest n.

    Examples
    --------
    >>> import pandas as pd
    >>> from types import SimpleNamespace
    >>> curves = pd.DataFrame({"coalition": ["a", "b", "c", "a+b", "a+c", "b+c", "a+b+c"],
    ...                        "size": [1, 1, 1, 2, 2, 2, 3], "n": 10,
    ...                        "accuracy": [0.5, 0.6, 0.4, 0.7, 0.9, 0.8, 0.95]})
    >>> shown_coalitions(SimpleNamespace(curves=curves), top=1)
    ['a+b+c', 'a', 'b', 'c', 'a+c']
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {list(METRICS)}, got {metric!r}")
    if top < 0:
        raise ValueError(f"top must be >= 0, got {top}")
    c = result.curves
    full = full_coalition(result)
    singles = list(dict.fromkeys(c.loc[c["size"] == 1, "coalition"]))
    last = c[(c["n"] == c["n"].max()) & (c["size"] > 1) & (c["coalition"] != full)]
    higher_better = METRICS[metric][1]
    others = last.sort_values(metric, ascending=not higher_better, kind="stable")["coalition"].tolist()[:top]
    return [full, *singles, *others]


@escaped_figure
def learning_curve_figure(result, *, metric: str = "accuracy", top: int = 3) -> go.Figure:
    """Test ``metric`` against n per coalition (log x), bands = the result's intervals over seeds.

    Parameters
    ----------
    result : LearningCurvesResult
    metric : {"accuracy", "log_loss"}
        Higher accuracy is better; lower log loss is better.
    top : int
        How many coalitions besides the full one and the singletons are shown (best at the largest n);
        the rest are listed in the legend, hidden until clicked.

    Returns
    -------
    go.Figure

    Examples
    --------
    >>> from workbench import load_dataset
    >>> from workbench.analyses.learning_curves import learning_curves
    >>> res = learning_curves(load_dataset("synthetic-xor", n=300), sizes=[60, 120], seeds=[0, 1],
    ...                       epochs=2, progress=False)
    >>> fig = learning_curve_figure(res)
    >>> fig.layout.xaxis.type
    'log'
    """
    shown = shown_coalitions(result, metric=metric, top=top)
    label, higher_better = METRICS[metric]
    c = result.curves
    full, best = full_coalition(result), best_unimodal(result)
    order = shown + [k for k in dict.fromkeys(c.sort_values(["size", "coalition"])["coalition"]) if k not in shown]
    fig = go.Figure()
    for k in order:
        g = c[c["coalition"] == k].sort_values("n")
        visible = True if k in shown else "legendonly"
        highlight = k in (full, best)
        name = f"{k} (all)" if k == full else f"{k} (best unimodal)" if k == best else k
        n = g["n"].to_numpy(dtype=float)
        fig.add_trace(go.Scatter(x=np.r_[n, n[::-1]], y=np.r_[g[f"{metric}_ci_upper"], g[f"{metric}_ci_lower"][::-1]],
                                 fill="toself", opacity=0.25 if highlight else 0.12, line={"width": 0},
                                 legendgroup=k, showlegend=False, hoverinfo="skip", visible=visible,
                                 name=f"{k} interval"))
        fig.add_trace(go.Scatter(x=n, y=g[metric], mode="lines+markers", name=name, legendgroup=k, visible=visible,
                                 line={"width": 4 if highlight else 1.5, "dash": "solid" if highlight or
                                       int(g["size"].iloc[0]) == 1 else "dot"},
                                 customdata=np.c_[g[f"{metric}_ci_lower"], g[f"{metric}_ci_upper"]],
                                 hovertemplate="n=%{x}<br>%{y:.4f} [%{customdata[0]:.4f}, %{customdata[1]:.4f}]"))
    seeds = int(result.runs["seed"].nunique())
    if result.crossover_n is not None:
        at = c[(c["coalition"] == full) & (c["n"] == result.crossover_n)]
        fig.add_trace(go.Scatter(x=[float(result.crossover_n)], y=at[metric].to_numpy(), mode="markers",
                                 marker={"symbol": "star", "size": 16, "color": "black"},
                                 name=f"crossover n={result.crossover_n:g}"))
        fig.add_vline(x=float(result.crossover_n), line={"dash": "dash", "color": "black", "width": 1})
        cross = (f"Star and dashed line: crossover n={result.crossover_n:g}, the smallest n from which {full}'s "
                 f"mean accuracy stays above every single modality's.")
    else:
        cross = f"No crossover: {full}'s mean accuracy does not stay above every single modality's up to the largest n."
    caption = [f"{label} of every coalition on the test split against the number of training samples n "
               f"({'higher' if higher_better else 'lower'} is better). Bands: {result.level:.0%} t interval over "
               f"{seeds} seeds. Thick: {full} (all modalities) and {best} (best unimodal); hidden coalitions are "
               "in the legend (click to show).",
               f"{cross} Gap at n={int(c['n'].max())}: {result.gap:+.3f} [{result.gap_ci_lower:+.3f}, "
               f"{result.gap_ci_upper:+.3f}] accuracy, {full} minus {best} (positive: the extra modalities help)."]
    sizes = sorted(c["n"].unique())
    fig.update_layout(title=f"Learning curves per coalition: {label} vs n",
                      xaxis={"type": "log", "title": "training samples n", "tickvals": sizes,
                             "ticktext": [f"{v:g}" for v in sizes]},
                      yaxis={"title": label}, height=620)
    add_caption(fig, caption)
    return fig


def _square(pairs: pd.DataFrame, value: str, names: list[str]) -> pd.DataFrame:
    return pairs.pivot(index="source", columns="target", values=value).reindex(index=names, columns=names)


@escaped_figure
def connection_figure(result) -> go.Figure:
    """Connection (cross-validated R^2, source -> target) and heterogeneity (pair gain) per pair of modalities.

    Parameters
    ----------
    result : LearningCurvesResult

    Returns
    -------
    go.Figure
        Two heat maps over (source, target): ``result.pairs["connection_r2"]`` (text: with its
        interval) and ``result.pairs["heterogeneity"]``.

    Examples
    --------
    >>> from workbench import load_dataset
    >>> from workbench.analyses.learning_curves import learning_curves
    >>> res = learning_curves(load_dataset("synthetic-xor", n=300), sizes=[60, 120], seeds=[0, 1],
    ...                       epochs=2, progress=False)
    >>> [t.type for t in connection_figure(res).data]
    ['heatmap', 'heatmap']
    """
    names, r2, text, het, het_text = connection_tables(result)
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.22,
                        subplot_titles=["connection: R^2 of target from source", "heterogeneity: pair gain"])
    fig.add_trace(go.Heatmap(z=r2.to_numpy(), x=names, y=names, zmin=0, zmax=1, colorscale="Viridis", text=text,
                             texttemplate="%{text}", name="connection R^2",
                             colorbar={"title": "R^2", "x": 0.40, "len": 0.9}), row=1, col=1)
    bound = float(np.nanmax(np.abs(het.to_numpy()))) if np.isfinite(het.to_numpy()).any() else 1.0
    fig.add_trace(go.Heatmap(z=het.to_numpy(), x=names, y=names, zmid=0, zmin=-bound, zmax=bound, colorscale="RdBu",
                             text=het_text, texttemplate="%{text}", name="heterogeneity",
                             colorbar={"title": "gain", "x": 1.0, "len": 0.9}), row=1, col=2)
    for col in (1, 2):
        fig.update_xaxes(title_text="target modality" if col == 1 else "modality", row=1, col=col)
        fig.update_yaxes(title_text="source modality" if col == 1 else None, autorange="reversed", row=1, col=col)
    fig.update_layout(title="Connection and heterogeneity per pair of modalities",
                      height=320 + 60 * len(names))
    add_caption(fig, connection_caption(result))
    return fig


def connection_tables(result) -> tuple[list[str], pd.DataFrame, list[list[str]], pd.DataFrame, list[list[str]]]:
    """Square source x target tables of the connection R^2 and the pair gain, with cell texts
    carrying their intervals: ``(names, r2, r2_text, heterogeneity, heterogeneity_text)``."""
    p = result.pairs
    names = list(dict.fromkeys([*p["source"], *p["target"]]))
    r2 = _square(p, "connection_r2", names)
    lo, hi = _square(p, "connection_r2_ci_lower", names), _square(p, "connection_r2_ci_upper", names)
    het = _square(p, "heterogeneity", names)
    text = [[f"{v:.2f} [{a:.2f}, {b:.2f}]" if v == v else "" for v, a, b in zip(rv, ra, rb, strict=True)]
            for rv, ra, rb in zip(r2.to_numpy(), lo.to_numpy(), hi.to_numpy(), strict=True)]
    if "heterogeneity_ci_lower" in p:  # results saved before the interval existed have none
        het_lo, het_hi = _square(p, "heterogeneity_ci_lower", names), _square(p, "heterogeneity_ci_upper", names)
        het_text = [[f"{v:+.3f} [{a:+.3f}, {b:+.3f}]" if v == v else "" for v, a, b in zip(rv, ra, rb, strict=True)]
                    for rv, ra, rb in zip(het.to_numpy(), het_lo.to_numpy(), het_hi.to_numpy(), strict=True)]
    else:
        het_text = [[f"{v:+.3f}" if v == v else "" for v in row] for row in het.to_numpy()]
    return names, r2, text, het, het_text


def connection_caption(result, *, panels: tuple[str, str] = ("Left", "Right")) -> list[str]:
    """Caption of the connection and heterogeneity maps, one line per map (interactive: side by side;
    paper: ``("Top", "Bottom")``)."""
    seeds = int(result.runs["seed"].nunique())
    n = int(result.curves["n"].max())
    return [f"{panels[0]}: cross-validated R^2 (ridge, 5 shuffled folds, test split) of the target modality's embedding "
            f"in the full model predicted from the source's, at n={n}; brackets: {result.level:.0%} t interval "
            f"over {seeds} seeds. High R^2: strong connection (one modality predicts the other), which the "
            "theory needs; 0: no better than the mean.",
            f"{panels[1]}: test accuracy of the pair's model minus its better member's at n={n}, in accuracy points, "
            f"brackets: {result.level:.0%} t interval over seeds of the paired difference (symmetric; positive: "
            "the pair gains from combining, as under heterogeneity; 0 or below: no gain)."]


def report_figures(result) -> list[go.Figure]:
    """Learning curves (accuracy, log loss) and the connection/heterogeneity map, for panels and reports."""
    return [learning_curve_figure(result, metric="accuracy"), learning_curve_figure(result, metric="log_loss"),
            connection_figure(result)]
