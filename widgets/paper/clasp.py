"""Paper figures of the CLASP analysis (:class:`workbench.analyses.clasp.ClaspResult`, VibraVerse).

Recall@k per query -> gallery direction (mean over seeds, t-interval, chance dotted) for every k
of the result, and the material probes per representation (majority class dotted); the values
are the result's ``summary`` rows, the captions the interactive figures'
(:mod:`widgets.figures.clasp`).

Examples
--------
>>> import pandas as pd
>>> from workbench.analyses.clasp import ClaspResult
>>> row = {"value": 0.2, "value_ci_lower": 0.15, "value_ci_upper": 0.25, "chance": 0.03, "n_seeds": 3, "level": 0.95}
>>> summary = pd.DataFrame([{"kind": "retrieval", "name": "sound->shape R@10", **row},
...                         {"kind": "probe", "name": "z_sound", **row}])
>>> [f.name for f in paper_figures(ClaspResult(pd.DataFrame(), pd.DataFrame(), summary))]
['clasp_R10', 'clasp_probes']
"""

from __future__ import annotations

from widgets.figures.clasp import PROBE_CAPTION, recall_caption, recall_metrics, recall_rows
from widgets.paper import PaperFigure, stem
from widgets.paper.style import GREY, interval_bars, new_figure, paper_style


def _chance_line(ax, rows, label: str) -> None:
    ax.axhline(float(rows["chance"].mean()), color=GREY, linestyle=":", linewidth=0.9, gid="chance", label=label)
    ax.legend(loc="upper right")


def recall(result, metric: str = "R@10") -> PaperFigure:
    """Bars of ``metric`` per direction with t-intervals over seeds; chance dotted."""
    rows, names = recall_rows(result, metric)
    with paper_style():
        fig, ax = new_figure(height=2.4)
        interval_bars(ax, names, rows["value"], rows["value_ci_lower"], rows["value_ci_upper"], gid="recall")
        _chance_line(ax, rows, "chance")
        ax.set_ylim(0, 1)
        ax.set_xlabel("query -> gallery")
        ax.set_ylabel(f"{metric} (share of test queries)")
    caption = recall_caption(metric, int(rows["n_seeds"].max()), float(rows["level"].iloc[0]))
    return PaperFigure(f"clasp_{stem(metric)}", fig, caption)


def probes(result) -> PaperFigure:
    """Material-probe accuracy per representation with t-intervals over seeds; majority class dotted."""
    rows = result.summary[result.summary["kind"] == "probe"]
    if rows.empty:
        raise ValueError("result: the clasp result has no probe rows")
    with paper_style():
        fig, ax = new_figure(height=2.4)
        interval_bars(ax, list(rows["name"]), rows["value"], rows["value_ci_lower"], rows["value_ci_upper"],
                      gid="probes")
        _chance_line(ax, rows, "majority class")
        ax.set_ylim(0, 1)
        ax.set_xlabel("representation")
        ax.set_ylabel("material test accuracy")
    return PaperFigure("clasp_probes", fig, PROBE_CAPTION)


def paper_figures(result) -> list[PaperFigure]:
    """Recall@k for every k of the result, then the probes (when computed)."""
    figs = [recall(result, k) for k in recall_metrics(result)]
    if (result.summary["kind"] == "probe").any():
        figs.append(probes(result))
    return figs
