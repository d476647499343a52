"""Paper figures of fairness by group (:class:`workbench.analyses.fairness.FairnessResult`).

Per group attribute: one bar per group with its bootstrap interval (error bar), groups too
small or with one class only (``flag``) in grey and without an interval, and the overall value
as a dashed line. Values and intervals come from :meth:`FairnessResult.metric_by_group`.

Example
-------
>>> [f.name for f in paper_figures(result)]  # doctest: +SKIP
['fairness_accuracy_by_sex']
"""

from __future__ import annotations

import numpy as np

from widgets.paper import PaperFigure
from widgets.paper.style import GREY, new_figure, paper_style, text

BAR_COLOR = "#0072B2"
# metrics of assess_fairness with a good direction (selection_rate has none, n is a count)
HIGHER_IS_BETTER = {"accuracy": True, "balanced_accuracy": True, "auc": True, "tpr": True, "fpr": False, "ece": False}


def group_metric(result, metric: str = "accuracy", attribute: str | None = None) -> PaperFigure:
    """Bars of ``metric`` per group of ``attribute`` (default: the first) with bootstrap error bars."""
    if metric not in result.metrics:
        raise ValueError(f"metric: {metric!r} is not in this result ({', '.join(result.metrics)})")
    if attribute is not None and attribute not in result.attributes:
        raise ValueError(f"attribute: {attribute!r} is not in this result ({', '.join(result.attributes)})")
    attr = attribute or result.attributes[0]
    part = result.metric_by_group(metric, attr).reset_index()
    x = np.arange(len(part), dtype=float)
    value = part["value"].to_numpy(float)
    lo, hi = part["value_ci_lower"].to_numpy(float), part["value_ci_upper"].to_numpy(float)
    flagged = part["flag"].astype(str).to_numpy() != ""
    ok = np.isfinite(lo) & np.isfinite(hi) & ~flagged
    level = float(result.params["level"])
    with paper_style():
        fig, ax = new_figure(height=2.3)
        ax.bar(x, value, color=[GREY if f else BAR_COLOR for f in flagged], width=0.7, gid="groups")
        ax.errorbar(x[ok], value[ok], yerr=np.vstack([value[ok] - lo[ok], hi[ok] - value[ok]]), fmt="none",
                    ecolor="black", elinewidth=1.0, capsize=2, gid="intervals")
        overall = result.overall.set_index("metric")
        if metric in overall.index:
            ax.axhline(float(overall.loc[metric, "value"]), color="black", linestyle="--", linewidth=0.8,
                       gid="overall", label="overall")
            ax.legend(loc="lower right")
        labels = [f"{text(g)}\n(n={int(n)}{', ' + text(f) if f else ''})"
                  for g, n, f in zip(part["group"], part["n"], part["flag"], strict=True)]
        ax.set_xticks(x, labels)
        ax.set_xlabel(text(attr))
        ax.set_ylabel(text(metric))
        if metric in ("accuracy", "balanced_accuracy", "auc"):
            ax.set_ylim(0, 1.02)
    direction = {True: "higher is better", False: "lower is better"}.get(HIGHER_IS_BETTER.get(metric), "")
    caption = (f"{metric} of the model per {attr} group" + (f" ({direction})" if direction else "")
               + f" on the {result.params.get('split', 'test')} split; error bars: {level:.0%} bootstrap "
               f"intervals ({result.params.get('n_boot', '')} resamples); dashed line: all samples.")
    if flagged.any():
        caption += (f" Grey bars: groups with fewer than {result.params.get('min_group_size', 30)} samples or one "
                    "class only, shown without an interval and left out of the disparities.")
    return PaperFigure(f"fairness_{metric}_by_{attr}", fig, caption)


def paper_figures(result) -> list[PaperFigure]:
    """Accuracy (else the first metric) by group, one figure per group attribute."""
    metric = "accuracy" if "accuracy" in result.metrics else result.metrics[0]
    return [group_metric(result, metric, attr) for attr in result.attributes]
