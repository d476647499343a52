"""Figures of the theory lab (:class:`workbench.analyses.theory_lab.TheoryLabResult`, Lu 2023's example):
log-log excess risk against n per learner with interval bands, the UNI/MM ratio against n with a
sqrt(n) reference line, and a heat map of the multimodal advantage over (eps, sigma_y).

Pure functions ``result -> go.Figure``; the intervals are the result's (t intervals over seeds).
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from widgets.figures.captions import add_caption
from widgets.text import escaped_figure


def cell(frame, eps, sigma_y, x_only):
    return frame[(frame["eps"] == eps) & (frame["sigma_y"] == sigma_y) & (frame["x_only"] == x_only)]


def default_cell(result):
    """The (eps, sigma_y, x_only) cell a figure shows by default: the smallest of each."""
    s = result.summary
    return float(s["eps"].min()), float(s["sigma_y"].min()), float(s["x_only"].min())


@escaped_figure
def excess_risk_figure(result, eps: float | None = None, sigma_y: float | None = None, x_only: float | None = None
                       ) -> go.Figure:
    """Log-log excess risk (squared loss, against E[z|x]; lower is better) vs n per learner, bands = CI."""
    d = default_cell(result)
    eps, sigma_y, x_only = (d[0] if eps is None else eps), (d[1] if sigma_y is None else sigma_y), \
        (d[2] if x_only is None else x_only)
    s = cell(result.summary, eps, sigma_y, x_only)
    fig = go.Figure()
    for learner, g in s.groupby("learner"):
        g = g.sort_values("n")
        lo = g["excess_risk_ci_lower"].clip(lower=1e-16)
        fig.add_trace(go.Scatter(x=np.r_[g["n"], g["n"][::-1]], y=np.r_[g["excess_risk_ci_upper"], lo[::-1]],
                                 fill="toself", opacity=0.2, line={"width": 0}, showlegend=False, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=g["n"], y=g["excess_risk"].clip(lower=1e-16), mode="lines+markers", name=learner))
    fig.update_layout(title=f"Excess risk vs n (eps={eps}, sigma_y={sigma_y}, x-only share={x_only}); "
                            f"bands: {result.level:.0%} CI over seeds; lower is better",
                      xaxis={"type": "log", "title": "training samples n"},
                      yaxis={"type": "log", "title": "excess risk E(f(x) - E[z|x])^2"})
    add_caption(fig, [excess_risk_caption(result, s)])
    return fig


def excess_risk_caption(result, cell_summary) -> str:
    """Caption of the excess-risk figure (interactive and paper) for one cell's summary rows."""
    seeds = int(cell_summary["seeds"].max()) if len(cell_summary) else 0
    return (f"Mean over {seeds} seeds of each learner's excess squared-error risk against the Bayes "
            "predictor from x, E[z|x] (dimensionless, z in [-1, 1]; lower is better), against the number "
            f"of training samples n; bands: {result.level:.0%} t interval over seeds (lower end cut at "
            "1e-16). mm: two-stage multimodal ERM; uni_erm: unimodal ERM over the induced class; uni_mlp: "
            "unimodal MLP; mm_mlp: two-stage MLPs. An exact learner (excess risk 0) is drawn at 1e-16.")


@escaped_figure
def ratio_figure(result, eps: float | None = None, sigma_y: float | None = None, x_only: float | None = None
                 ) -> go.Figure:
    """UNI/MM excess-risk ratio vs n (above 1: multimodal ahead) with a sqrt(n) reference line."""
    d = default_cell(result)
    eps, sigma_y, x_only = (d[0] if eps is None else eps), (d[1] if sigma_y is None else sigma_y), \
        (d[2] if x_only is None else x_only)
    r = cell(result.ratios, eps, sigma_y, x_only)
    fig = go.Figure()
    for uni, g in r.groupby("uni"):
        g = g.sort_values("n")
        fig.add_trace(go.Scatter(x=g["n"], y=g["ratio"], mode="lines+markers", name=f"{uni} / mm",
                                 error_y={"type": "data", "symmetric": False, "array": g["ratio_ci_upper"] - g["ratio"],
                                          "arrayminus": g["ratio"] - g["ratio_ci_lower"]}))
    if len(r):
        n, ref = sqrt_reference(r)
        fig.add_trace(go.Scatter(x=n, y=ref,
                                 mode="lines", name="sqrt(n) reference", line={"dash": "dot", "color": "black"}))
    fig.update_layout(title=f"UNI/MM ratio (geometric mean over seeds, {result.level:.0%} CI; eps={eps}, "
                            f"sigma_y={sigma_y}); above 1: multimodal ahead",
                      xaxis={"type": "log", "title": "training samples n"}, yaxis={"type": "log", "title": "ratio"})
    add_caption(fig, [ratio_caption(result)])
    return fig


def ratio_caption(result) -> str:
    """Caption of the UNI/MM ratio figure (interactive and paper)."""
    return ("Ratio of a unimodal learner's excess risk to the two-stage multimodal learner's (mm), per "
            "seed on the same data, then the geometric mean over seeds; error bars: "
            f"{result.level:.0%} t interval of the mean log ratio. Above 1: the multimodal learner is "
            "ahead (higher is better for mm). Dotted: sqrt(n) through the first point, the theory's "
            "largest possible growth of the advantage. Excess risks below 1e-16 count as 1e-16.")


def sqrt_reference(ratios) -> tuple[np.ndarray, np.ndarray]:
    """The sqrt(n) reference line through the median ratio at the smallest n: (n, ratio)."""
    n = np.sort(ratios["n"].unique())
    return n, np.sqrt(n / n[0]) * float(ratios[ratios["n"] == n[0]]["ratio"].median())


@escaped_figure
def advantage_heatmap(result, n: int | None = None, uni: str = "uni_mlp", x_only: float = 0.0) -> go.Figure:
    """log10 of the UNI/MM ratio over (eps, sigma_y) at one n: positive = multimodal ahead, 0 = no advantage."""
    n, table = advantage_table(result, n=n, uni=uni, x_only=x_only)
    fig = go.Figure(go.Heatmap(z=np.log10(table.to_numpy()), x=[str(c) for c in table.columns],
                               y=[str(i) for i in table.index], colorscale="RdBu", zmid=0,
                               colorbar={"title": "log10 ratio"}))
    fig.update_layout(title=f"Multimodal advantage log10({uni} / mm) at n={n}; red-blue centred at 0 (no advantage)",
                      xaxis_title="eps (heterogeneity: small = richer unimodal class)",
                      yaxis_title="sigma_y (connection noise)")
    add_caption(fig, [advantage_caption(uni, n)])
    return fig


def advantage_table(result, *, n: int | None, uni: str, x_only: float):
    """(n, sigma_y x eps table of the UNI/MM ratio) at ``n`` (default: the largest)."""
    r = result.ratios[(result.ratios["uni"] == uni) & (result.ratios["x_only"] == x_only)]
    n = int(r["n"].max()) if n is None and len(r) else n
    return n, r[r["n"] == n].pivot(index="sigma_y", columns="eps", values="ratio")


def advantage_caption(uni: str, n: int) -> str:
    """Caption of the advantage heat map (interactive and paper)."""
    return (f"log10 of the geometric mean over seeds of {uni}'s excess risk over mm's at n={n}, for each "
            "heterogeneity eps (small: the unimodal class oscillates fast) and connection noise sigma_y. "
            "Blue (> 0): the multimodal learner is ahead; red (< 0): the unimodal one is; white: no "
            "advantage. The theory expects blue only where both conditions hold (small eps, small sigma_y).")


def report_figures(result) -> list[go.Figure]:
    """The theory lab's figures for panels and reports."""
    figs = [excess_risk_figure(result)]
    if len(result.ratios):
        figs += [ratio_figure(result), advantage_heatmap(result, uni=str(result.ratios["uni"].iloc[0]))]
    return figs
