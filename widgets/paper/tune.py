"""Paper figure of a hyperparameter search (:class:`workbench.jobs.tune.TuneResult`): the sensitivity view.

Per hyperparameter, the validation metric of every complete trial against its setting: dot =
mean over seeds, bar = the seeds' range (``result.sensitivity()``); log axis for a log-scale
search spanning a factor of 10 or more. Caption shared with :mod:`widgets.figures.tune`.
"""

from __future__ import annotations

import numpy as np

from widgets.figures.tune import caption
from widgets.paper import PaperFigure
from widgets.paper.style import new_figure, paper_style, text

DOT_COLOR = "#0072B2"


def sensitivity(result, name: str) -> PaperFigure:
    """The validation metric against hyperparameter ``name``."""
    if name not in result.hyperparameters():
        raise ValueError(f"name: {name!r} is not a hyperparameter of this study ({', '.join(result.hyperparameters())})")
    t = result.sensitivity()
    t = t[t["hyperparameter"] == name]
    with paper_style():
        fig, ax = new_figure(height=2.2)
        numeric = np.issubdtype(t["setting"].dtype, np.number)
        x = t["setting"].to_numpy(float) if numeric else np.arange(len(t), dtype=float)
        m = t["mean"].to_numpy(float)
        ax.errorbar(x, m, yerr=np.vstack([m - t["seed_min"].to_numpy(float), t["seed_max"].to_numpy(float) - m]),
                    fmt="none", ecolor=DOT_COLOR, elinewidth=1.0, alpha=0.7, gid="seeds")
        ax.plot(x, m, "D", color=DOT_COLOR, markersize=3.5, gid="means")
        if numeric and len(x) and x.min() > 0 and x.max() / x.min() >= 10:
            ax.set_xscale("log")
        if not numeric:
            ax.set_xticks(x, [text(v) for v in t["setting"]])
        ax.set_xlabel(text(name))
        ax.set_ylabel(f"validation {text(result.metric)}")
    return PaperFigure(f"sensitivity_{name}", fig, caption(result, name))


def paper_figures(result) -> list[PaperFigure]:
    """One sensitivity figure per hyperparameter."""
    return [sensitivity(result, name) for name in result.hyperparameters()]
