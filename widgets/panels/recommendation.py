"""JupyterLab panels for recommendation: metrics by domain and user group, and a user's top-K list.

:func:`recommendation_panel` (registered for
:class:`~workbench.analyses.recommendation.RecommendationResult`) re-draws the metric bars, the
per-group bars and the group disparities from the saved result when the metric, K or the user
attribute changes; it computes nothing. :func:`top_k_panel` re-ranks: for a ranking run (or a fit
and its data) it shows any user's top-K list in any domain with the items' modalities and which
are test hits (:func:`~workbench.analyses.recommendation.top_k_list`).

Example
-------
>>> from workbench.training.train_ranking import train_ranking     # doctest: +SKIP
>>> run = train_ranking("ml-100k-genre-domains", model="micrec", anchors=True)  # doctest: +SKIP
>>> top_k_panel(run)                                                # doctest: +SKIP
"""

from __future__ import annotations

import ipywidgets as w
import numpy as np

from widgets.figures.recommendation import (
    recommendation_disparity_figure,
    recommendation_group_figure,
    recommendation_metrics_figure,
    top_k_figure,
)
from widgets.panels.view import FigureView, PanelBox
from widgets.text import escape
from workbench.analyses.recommendation import ranking_run_fit, top_k_list


def recommendation_panel(result, name: str | None = None) -> PanelBox:
    """Metric, K and user-attribute selectors over the metric, group and disparity figures."""
    metrics = list(dict.fromkeys(result.metrics["metric"]))
    ks = sorted({int(k) for k in result.metrics["k"]})
    attributes = list(dict.fromkeys(result.by_group["attribute"])) if len(result.by_group) else []
    metric = w.Dropdown(options=metrics, value="ndcg" if "ndcg" in metrics else metrics[0], description="metric")
    k = w.Dropdown(options=ks, value=ks[-1], description="K")
    attribute = w.Dropdown(options=attributes or [None], description="group")
    bars = FigureView(recommendation_metrics_figure(result, metric.value, k.value))
    groups = FigureView(recommendation_group_figure(result, metric.value, k.value, attribute.value))
    gaps = FigureView(recommendation_disparity_figure(result, metric.value, k.value))

    def refresh(_=None) -> None:
        bars.show(recommendation_metrics_figure(result, metric.value, k.value))
        groups.show(recommendation_group_figure(result, metric.value, k.value, attribute.value))
        gaps.show(recommendation_disparity_figure(result, metric.value, k.value))

    for control in (metric, k, attribute):
        control.observe(refresh, names="value")
    box = PanelBox([w.HBox([metric, k, attribute]), bars, groups, gaps])
    box.controls = {"metric": metric, "k": k, "attribute": attribute}
    box.views = {"metrics": bars, "groups": groups, "disparities": gaps}
    return box


def _test_users(data, domain: str) -> np.ndarray:
    """Users trained on with test items in ``domain``, in id order (what the list shows first)."""
    test = data.domains[domain].test
    return np.unique(test[~np.isin(test[:, 0], data.new_users), 0])


def top_k_panel(run=None, *, fit=None, data=None, k: int = 10) -> PanelBox:
    """Any user's top-K list in any domain of a ranking run (or of ``fit`` trained on ``data``).

    Controls: the domain, the user (an id; the first user with test items by default) and K. The
    line above the table gives the user's test items, hits and history length.
    """
    if fit is None:
        if run is None:
            raise ValueError("top_k_panel needs a ranking run, or fit= and data=")
        fit, data = ranking_run_fit(run, data)
    elif data is None:
        raise ValueError("top_k_panel: pass data= (the RecData the fit was trained on) with fit=")
    domains = list(fit.models)
    domain = w.Dropdown(options=domains, value=domains[0], description="domain")
    first = _test_users(data, domains[0])
    user = w.BoundedIntText(value=int(first[0]) if len(first) else 0, min=0, max=data.n_users - 1,
                            description="user")
    size = w.IntSlider(value=k, min=1, max=50, description="K", continuous_update=False)
    status = w.HTML()
    view = FigureView(top_k_figure(top_k_list(fit, data, user=user.value, domain=domain.value, k=size.value)))

    def refresh(_=None) -> None:
        lst = top_k_list(fit, data, user=user.value, domain=domain.value, k=size.value)
        n_test = int((data.domains[domain.value].test[:, 0] == user.value).sum())
        hits = int(lst.items["hit"].sum())
        status.value = escape(f"user {user.value} in domain {domain.value}: {n_test} test item(s), {hits} in the "
                              f"top {size.value}; {len(lst.history)} training item(s) in the history")
        view.show(top_k_figure(lst))

    for control in (domain, user, size):
        control.observe(refresh, names="value")
    refresh()
    box = PanelBox([w.HBox([domain, user, size]), status, view])
    box.controls = {"domain": domain, "user": user, "k": size}
    box.view, box.status = view, status
    return box
