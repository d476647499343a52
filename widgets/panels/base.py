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
from widgets.summary import epoch_bounds, load_run_results, run_splits, run_summary_html
from widgets.text import escape
from workbench.store.runs import Run


def redraw(target: go.FigureWidget, fig: go.Figure) -> None:
    """Replace the traces and layout of a displayed figure widget by those of ``fig``."""
    with target.batch_update():
        target.data = ()
        target.add_traces(list(fig.data))
        target.layout = fig.layout


class ResultPanel(w.VBox):
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
        self.figure = go.FigureWidget(self.figures[titles[0]])
        self.selector.observe(lambda change: redraw(self.figure, self.figures[change["new"]]), names="value")
        super().__init__([self.selector, self.figure] if len(titles) > 1 else [self.figure])


class RunPanel(w.VBox):
    """A run: summary, learning curves (epoch-range slider), accuracy per modality (split selector),
    and one tab per saved analysis."""

    def __init__(self, run: Run):
        self.run = run
        lo, hi = epoch_bounds(run)
        self.epochs = w.IntRangeSlider(value=(lo, hi), min=lo, max=hi, description="epochs", continuous_update=False)
        splits = run_splits(run)
        self.split = w.Dropdown(options=splits, value=splits[0] if splits else None, description="split")
        self.history = go.FigureWidget(history_figure(run.history))
        self.accuracy = go.FigureWidget(accuracy_figure(run.accuracy(), split=self.split.value))
        self.epochs.observe(self._redraw_history, names="value")
        self.split.observe(self._redraw_accuracy, names="value")
        overview = w.VBox([w.HBox([self.epochs, self.split]), self.history, self.accuracy])
        tabs = [overview] + [self._result_tab(name, res) for name, res in load_run_results(run).items()]
        self.tabs = w.Tab(children=tabs, titles=["overview", *run.result_names()])
        super().__init__([w.HTML(run_summary_html(run)), self.tabs])

    def _redraw_history(self, change) -> None:
        show_epochs(self.history, change["new"])

    def _redraw_accuracy(self, change) -> None:
        redraw(self.accuracy, accuracy_figure(self.run.accuracy(), split=change["new"]))

    @staticmethod
    def _result_tab(name: str, result) -> w.Widget:
        if isinstance(result, str):
            return w.HTML(f"<p style='color:#b00'>{escape(result)}</p>")
        return ResultPanel(result, name)

