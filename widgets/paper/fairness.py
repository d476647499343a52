"""Paper figures of fairness by group (:class:`workbench.analyses.fairness.FairnessResult`).

Per group attribute: one bar per group with its bootstrap interval (error bar), groups too
small or with one class only (``flag``) in grey and without an interval, and the overall value
as a dashed line; and the disparities (differences, ratios, max-min gaps) as dots with their
intervals. Values and intervals come from :meth:`FairnessResult.metric_by_group` and
``result.disparities``; the captions and each metric's good direction are the interactive
figures' (:mod:`widgets.figures.fairness`).

Example
-------
>>> [f.name for f in paper_figures(result)]  # doctest: +SKIP
['fairness_accuracy_by_sex', 'fairness_disparities_sex']
"""

from __future__ import annotations

import numpy as np

from widgets.figures.fairness import direction, disparity_caption
from widgets.paper import PaperFigure
from widgets.paper.style import GREY, new_figure, paper_style, text

BAR_COLOR = "#0072B2"


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
    way = direction(metric)
    caption = (f"{metric} of the model per {attr} group" + (f" ({way})" if not way.startswith("neither") else "")
               + f" on the {result.params.get('split', 'test')} split; error bars: {level:.0%} bootstrap "
               f"intervals ({result.params.get('n_boot', '')} resamples); dashed line: all samples.")
    if flagged.any():
        caption += (f" Grey bars: groups with fewer than {result.params.get('min_group_size', 30)} samples or one "
                    "class only, shown without an interval and left out of the disparities.")
    return PaperFigure(f"fairness_{metric}_by_{attr}", fig, caption)


def disparities(result, attribute: str | None = None) -> PaperFigure:
    """Every disparity metric of ``attribute`` (default: the first) as a dot with its interval."""
    if attribute is not None and attribute not in result.attributes:
        raise ValueError(f"attribute: {attribute!r} is not in this result ({', '.join(result.attributes)})")
    attr = attribute or result.attributes[0]
    part = result.disparities[result.disparities["attribute"] == attr].reset_index(drop=True)
    y = np.arange(len(part))[::-1].astype(float)
    value = part["value"].to_numpy(float)
    lo, hi = part["value_ci_lower"].to_numpy(float), part["value_ci_upper"].to_numpy(float)
    ok = np.isfinite(lo) & np.isfinite(hi)
    with paper_style():
        fig, ax = new_figure(height=0.8 + 0.28 * len(part))
        ax.errorbar(value[ok], y[ok], xerr=np.vstack([value[ok] - lo[ok], hi[ok] - value[ok]]), fmt="none",
                    ecolor=BAR_COLOR, elinewidth=1.4, gid="intervals")
        ax.plot(value, y, "o", color=BAR_COLOR, gid="disparities")
        ax.axvline(0, color=GREY, linestyle=":", linewidth=0.8)
        ax.set_yticks(y, [text(f"{m} ({direction(m).split(' is ')[0]})") for m in part["metric"]])
        ax.set_ylim(-0.6, len(part) - 0.4)
        ax.set_xlabel(f"disparity between {text(attr)} groups")
    return PaperFigure(f"fairness_disparities_{attr}", fig, disparity_caption(result, attr))


def paper_figures(result) -> list[PaperFigure]:
    """Per group attribute: accuracy (else the first metric) by group, and the disparities."""
    metric = "accuracy" if "accuracy" in result.metrics else result.metrics[0]
    figs = []
    for attr in result.attributes:
        figs.append(group_metric(result, metric, attr))
        if (result.disparities["attribute"] == attr).any():
            figs.append(disparities(result, attr))
    return figs
