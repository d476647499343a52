"""Generic JupyterLab panels: any saved result, and a whole run.

:class:`ResultPanel` shows a result's figures (registered by its class in :mod:`widgets.registry`)
with a selector, or its table when no figure is registered; :class:`RunPanel` shows a run's learning curves
with an epoch-range slider, its accuracy per modality with a split selector, and one tab per saved
analysis. Panels only compose figure builders; controls re-draw, nothing is recomputed.

Example
-------
>>> from widgets.panels.base import RunPanel   # doctest: +SKIP
>>> RunPanel(run)                               # doctest: +SKIP
"""

from __future__ import annotations

import ipywidgets as w
import plotly.graph_objects as go

from widgets.figures.result import result_figures
from widgets.figures.run import accuracy_figure, history_figure, show_epochs
from widgets.panels.gap import gap_panel
from widgets.panels.view import FigureView, PanelBox
from widgets.summary import (
    base_rate,
    epoch_bounds,
    load_run_results,
    run_splits,
    run_summary_html,
    run_takeaways_html,
)
from widgets.text import escape
from workbench.analyses.gap import GapResult
from workbench.store.runs import Run


def redraw(target: FigureView, fig: go.Figure) -> None:
    """Show ``fig`` in ``target`` in place of its figure (a fresh plot, nothing of the old one kept)."""
    target.show(fig)


class ResultPanel(PanelBox):
    """A saved result's figures with a selector (its table when no figure is registered).

    Parameters
    ----------
    result : workbench.store.results.Result
    name : str, optional
        The result's name in the run (``results/NAME``), used in titles; its class's name by default.
        Figures are selected by the result's class, never by this name.
    figures : dict of str to go.Figure, optional
        Figures to offer instead of the registered ones (for a result class with its own builders).
    """

    def __init__(self, result, name: str | None = None, figures: dict[str, go.Figure] | None = None):
        self.result = result
        name = name if name is not None else type(result).__name__
        self.figures = figures if figures is not None else result_figures(name, result)
        titles = list(self.figures)
        self.selector = w.Dropdown(options=titles, value=titles[0], description="figure")
        self.view = FigureView(self.figures[titles[0]])
        self.selector.observe(lambda change: self.view.show(self.figures[change["new"]]), names="value")
        super().__init__([self.selector, self.view] if len(titles) > 1 else [self.view])

    @property
    def figure(self) -> go.Figure:
        """The figure shown now."""
        return self.view.figure


class RunPanel(PanelBox):
    """A run: summary, learning curves (epoch-range slider), accuracy per modality (split selector),
    and one tab per saved analysis (a gap result's tab is :func:`widgets.panels.gap.gap_panel`:
    pair, epoch and class selectors; any other result's is a :class:`ResultPanel`)."""

    def __init__(self, run: Run):
        self.run = run
        lo, hi = epoch_bounds(run)
        self.epochs = w.IntRangeSlider(value=(lo, hi), min=lo, max=hi, description="epochs", continuous_update=False)
        splits = run_splits(run)
        self.split = w.Dropdown(options=splits, value=splits[0] if splits else None, description="split")
        self.history_view = FigureView(history_figure(run.history))
        self.accuracy_view = FigureView(accuracy_figure(run.accuracy(), split=self.split.value,
                                                            base_rate=base_rate(run, self.split.value)))
        self.epochs.observe(self._redraw_history, names="value")
        self.split.observe(self._redraw_accuracy, names="value")
        overview = w.VBox([w.HBox([self.epochs, self.split]), self.history_view, self.accuracy_view])
        results = load_run_results(run)
        tabs = [overview] + [self._result_tab(name, res) for name, res in results.items()]
        self.tabs = w.Tab(children=tabs, titles=["overview", *run.result_names()])
        super().__init__([w.HTML(run_summary_html(run)), w.HTML(run_takeaways_html(run, results)), self.tabs])

    @property
    def history(self) -> go.Figure:
        """The learning-curve figure shown now."""
        return self.history_view.figure

    @property
    def accuracy(self) -> go.Figure:
        """The accuracy figure shown now."""
        return self.accuracy_view.figure

    def _redraw_history(self, change) -> None:
        # a copy: the zoom is a new figure, so the one shown before is never edited in place
        self.history_view.show(show_epochs(go.Figure(self.history), change["new"]))

    def _redraw_accuracy(self, change) -> None:
        self.accuracy_view.show(accuracy_figure(self.run.accuracy(), split=change["new"],
                                                base_rate=base_rate(self.run, change["new"])))

    @staticmethod
    def _result_tab(name: str, result) -> w.Widget:
        if isinstance(result, str):
            return w.HTML(f"<p style='color:#b00'>{escape(result)}</p>")
        if isinstance(result, GapResult) and len(result.pairs):
            # a pair selector over every pair (and each modality against the rest), drawn on demand:
            # the report's all-pairs figures take ~1 s to build for mfeat's 21 pairs
            return gap_panel(result)
        return ResultPanel(result, name)

