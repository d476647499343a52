"""The served Panel dashboard over a run folder (``workbench serve``).

One page per browser session: the runs table (:func:`workbench.analyses.runs_table.runs_table`, a
sortable Tabulator with a filter in every column header; ticking rows shows the newest ticked run in
the overview and compares the ticked runs), a run picker with a button that writes the run's HTML
report; the run overview (summary, learning curves with an epoch-range slider, accuracy per modality
with a split selector, and "scalars": any numeric history column); one tab per saved analysis with its
figures (registered by result class in :mod:`widgets.registry`; a table when none is; a gap result
gets a pair selector); and "compare runs": the chosen runs' differing settings, any metric per
configuration across seeds with paired differences, learning curves over seeds with 95% bands, and
accuracy per modality side by side. Every table has a CSV download; the run and tab are kept in the
page's link (``?run=...&tab=...``); the runs folder is rescanned every few seconds, so new and
finished runs appear without a restart.

Safety: the dashboard only reads run ids and result names it listed itself from the configured
runs folder, and refuses any that resolve (e.g. through a symlink) outside it. It reads JSON and
Parquet only -- no pickles (the model weights are never loaded) -- and evaluates no user text.
A bad run folder (missing files, failed, wrong format version) shows its error in the page;
other runs and other sessions keep working.

Many visitors at once: a new session's page is only the skeleton (Panel builds it on the server's
event loop, one session at a time, so that part is kept cheap); loading the run and drawing its
figures runs as the session's threaded ``onload`` callback on Panel's thread pool
(``num_threads``), so sessions fill in concurrently and a slow one never blocks another. Loaded
runs are shared between sessions through one bounded LRU cache (:class:`RunCache`), keyed by the
run's files' modification times so a re-written run is read again.

Every text from a run folder is shown escaped (:mod:`widgets.text`): HTML panes of escaped text,
never Markdown panes, figures whose text the builders escaped, and tables drawn with Tabulator's
plaintext formatter (which escapes HTML). CSV exports defuse cells a spreadsheet would run as a
formula (:func:`csv_text`). The report button writes only ``RUN/report.html`` of a listed run.

Example
-------
>>> from widgets.dashboard import serve        # doctest: +SKIP
>>> serve("runs", port=5006)                    # doctest: +SKIP
"""

from __future__ import annotations

import errno
import io
import logging
import os
import socket
import threading
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import panel as pn
import plotly.graph_objects as go

from widgets.figures.compare import configurations_figure, paired_figure
from widgets.figures.result import result_figures, table_frame
from widgets.figures.run import accuracy_figure, history_figure, runs_accuracy_figure, show_epochs
from widgets.figures.runs_table import scalars_figure, seed_curves_figure
from widgets.plotly_bundle import served_bundle, unsupported_traces, use_bundle
from widgets.summary import (
    epoch_bounds,
    load_run_results,
    run_splits,
    run_summary_html,
    run_takeaways_html,
)
from widgets.text import escape
from workbench.analyses.runs_table import (
    SHOWN_COLUMNS,
    comparable_runs,
    compare_runs,
    configuration_labels,
    differing_parameters,
    history_metrics,
    runs_table,
    seed_curves,
)
from workbench.jobs.tune import list_studies, load_study_result
from workbench.store.runs import Run, RunStore, default_runs_dir

PLOT_HEIGHT = 380
RUN_CACHE_SIZE = (
    32  # runs kept loaded per server process (predictions of a big run: tens of MB each)
)


class RunCache:
    """A thread-safe LRU cache of loaded runs shared by all sessions of one server process.

    Keyed by the run folder and the modification times of its ``status.json`` and
    ``config.json``, so a run that was re-written (re-trained, repaired) is loaded again.
    Two sessions missing the same run at once may both load it; the second copy wins, which
    costs a read but never blocks one session on another's load.
    """

    def __init__(self, maxsize: int = RUN_CACHE_SIZE):
        if maxsize < 1:
            raise ValueError(f"cache_size must be at least 1, got {maxsize}")
        self.maxsize = maxsize
        self._runs: OrderedDict[tuple, Run] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    @staticmethod
    def _key(store: RunStore, run_id: str) -> tuple:
        folder = store.path(run_id)
        stamps = tuple(
            (folder / f).stat().st_mtime_ns if (folder / f).exists() else None
            for f in ("status.json", "config.json")
        )
        return (str(folder.resolve()), *stamps)

    def get(self, store: RunStore, run_id: str) -> Run:
        key = self._key(store, run_id)
        with self._lock:
            if key in self._runs:
                self._runs.move_to_end(key)
                self.hits += 1
                return self._runs[key]
            self.misses += 1
        run = store.load(run_id)  # outside the lock: other sessions keep going meanwhile
        with self._lock:
            self._runs[key] = run
            self._runs.move_to_end(key)
            while len(self._runs) > self.maxsize:
                self._runs.popitem(last=False)
        return run

    def __len__(self) -> int:
        return len(self._runs)


RUNS = RunCache()


def comparison_figure_for(runs: dict[str, Run], split: str) -> go.Figure:
    """Side-by-side accuracy per modality of ``runs`` on ``split``."""
    return runs_accuracy_figure({rid: run.accuracy() for rid, run in runs.items()}, split=split)


def _height(fig: go.Figure | None) -> int:
    """The figure's own height (a 63-row heat map or a captioned figure is taller), else :data:`PLOT_HEIGHT`."""
    return int(fig.layout.height) if fig is not None and fig.layout.height else PLOT_HEIGHT


def _plot(fig: go.Figure | None = None) -> pn.pane.Plotly:
    return pn.pane.Plotly(
        fig, height=_height(fig), sizing_mode="stretch_width", config={"displaylogo": False}
    )


def figure_view(fig: go.Figure) -> pn.viewable.Viewable:
    """``fig`` as a plotly pane; a table figure as an HTML table; a message for trace types
    the served plotly.js build cannot draw (see :mod:`widgets.plotly_bundle`)."""
    missing = unsupported_traces(fig, served_bundle())
    if missing == ["table"] and all(t.type == "table" for t in fig.data):
        return pn.pane.DataFrame(
            table_frame(fig), index=False, sizing_mode="stretch_width", max_height=PLOT_HEIGHT
        )
    if missing:
        return _message(
            f"This figure uses plotly trace types {missing}, which the dashboard's light plotly.js "
            "build leaves out; restart it with `workbench serve --plotly full` to draw it."
        )
    return _plot(fig)


_ALERT_STYLE = {
    "background": "#f8d7da",
    "color": "#842029",
    "border": "1px solid #f5c2c7",
    "border-radius": "4px",
    "padding": "0.6em 1em",
}


def _message(text: str = "") -> pn.pane.HTML:
    """An error box. An HTML pane of escaped text, not ``pn.pane.Alert`` (a Markdown pane): the
    messages carry run ids and errors straight from run folders. Set its text with :func:`_say`."""
    pane = pn.pane.HTML("", styles=_ALERT_STYLE, sizing_mode="stretch_width")
    _say(pane, text)
    return pane


def _say(pane: pn.pane.HTML, text: str) -> None:
    """Show ``text`` (escaped) in a :func:`_message` pane; hidden when empty."""
    pane.object = f"<div>{escape(text)}</div>" if text else ""
    pane.visible = bool(text)


class ResultTab(pn.Column):
    """One analysis: a selector over its figures and the selected figure."""

    def __init__(self, name: str, result):
        # figure titles come from result files: plain <option> text in the selector, escaped in the figures
        self.figures = result_figures(name, result)
        titles = list(self.figures)
        self.selector = pn.widgets.Select(
            label="figure", options=titles, value=titles[0], width=420
        )
        self.view = pn.Column(figure_view(self.figures[titles[0]]), sizing_mode="stretch_width")
        self.selector.param.watch(self._show, "value")
        super().__init__(self.selector, self.view, sizing_mode="stretch_width", name=name)

    def _show(self, event) -> None:
        fig = self.figures[event.new]
        view = figure_view(fig)
        if isinstance(self.view[0], pn.pane.Plotly) and isinstance(view, pn.pane.Plotly):
            self.view[0].param.update(
                object=fig, height=_height(fig)
            )  # in place: no new plot model
        else:
            self.view[:] = [view]


class GapTab(pn.Column):
    """A gap result: a pair selector over every pair it holds (each pair of modalities and each
    modality against the rest) that re-draws the histogram and the GMM fit of that pair, and the
    unimodal accuracy over epochs. Drawn on demand: the report's all-pairs figures
    (:func:`widgets.figures.gap.report_figures`) take about a second to build for mfeat's 21 pairs."""

    def __init__(self, name: str, result):
        from widgets.figures.gap import (
            gap_histogram_figure,
            gmm_params_figure,
            unimodal_accuracy_figure,
        )

        pairs = [str(p) for p in result.pairs]
        self._pair_figures = lambda pair: [
            gap_histogram_figure(result, pair),
            gmm_params_figure(result, pair),
        ]
        self.pair_select = pn.widgets.Select(
            label="gap of pair", options={escape(p): p for p in pairs}, value=pairs[0], width=320
        )
        self.pair_view = pn.Column(
            *[figure_view(f) for f in self._pair_figures(pairs[0])], sizing_mode="stretch_width"
        )
        self.pair_select.param.watch(lambda e: self.show_pair(e.new), "value")
        unimodal = [figure_view(unimodal_accuracy_figure(result))] if len(result.unimodal) else []
        super().__init__(self.pair_select, self.pair_view, *unimodal, sizing_mode="stretch_width", name=name)

    def show_pair(self, pair: str) -> None:
        self.pair_view[:] = [figure_view(f) for f in self._pair_figures(pair)]


def _tab_for(name: str, result) -> pn.viewable.Viewable:
    from workbench.analyses.gap import GapResult

    if isinstance(result, GapResult) and len(result.pairs) > 0:
        return GapTab(name, result)
    return ResultTab(name, result)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_text(frame: pd.DataFrame) -> str:
    """``frame`` as CSV, with text cells that a spreadsheet would run as a formula (starting with
    ``= + - @``, tab or CR: run ids and parameter values come from run folders) prefixed with ``'``.

    Examples
    --------
    >>> csv_text(pd.DataFrame({"run": ["=cmd()", "ok"], "x": [-1.5, 2]})).splitlines()
    ['run,x', "'=cmd(),-1.5", 'ok,2.0']
    """
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object:
            out[col] = out[col].map(
                lambda v: f"'{v}" if isinstance(v, str) and v.startswith(_FORMULA_START) else v
            )
    return out.to_csv(index=False)


def _download(label: str, filename: str, frame_of) -> pn.widgets.FileDownload:
    """A CSV download button whose file is made when clicked (``frame_of()``: the table shown now)."""
    return pn.widgets.FileDownload(
        callback=lambda: io.StringIO(csv_text(frame_of())),
        filename=filename,
        label=label,
        color="light",
        width=230,
        embed=False,
    )


def _table(frame: pd.DataFrame | None = None, **kwargs) -> pn.widgets.Tabulator:
    """A read-only Tabulator. Text cells use Tabulator's plaintext formatter, which escapes HTML."""
    return pn.widgets.Tabulator(
        frame if frame is not None else pd.DataFrame(),
        disabled=True,
        show_index=False,
        sizing_mode="stretch_width",
        layout="fit_data_table",
        **kwargs,
    )


TABLE_COLUMNS = SHOWN_COLUMNS
POLL_MS = 5000  # how often a served page rescans the runs folder for new or finished runs


class Dashboard:
    """The widgets and callbacks of one dashboard session over ``runs_dir``."""

    def __init__(
        self,
        runs_dir: str | Path | None = None,
        *,
        defer: bool = False,
        cache: RunCache | None = None,
    ):
        """``defer``: build the widgets only; :meth:`start` loads and draws the first run (the
        served page calls it from a threaded onload callback). ``cache``: where loaded runs are
        kept (default the process-wide :data:`RUNS`)."""
        self.store = RunStore(runs_dir if runs_dir is not None else default_runs_dir())
        self.root = self.store.root.resolve()
        self._cache = cache if cache is not None else RUNS
        self._selecting = False
        self.table = runs_table(self.store)
        self._signature = self._scan()
        ids = self.run_ids()
        # -- the runs table: sortable, filterable; row selection feeds the overview and the comparison
        self.runs_grid = _table(
            self._grid_frame(),
            header_filters=True,
            selectable="checkbox",
            pagination="local",
            page_size=15,
        )
        self.refresh_button = pn.widgets.Button(label="refresh runs", color="default", width=140)
        self.runs_csv = _download("runs table (CSV)", "runs.csv", self._grid_frame)
        self.run_select = pn.widgets.Select(
            label="run", options=ids, value=ids[0] if ids else None, width=520
        )
        self.report_button = pn.widgets.Button(
            label="write HTML report of this run", color="primary", width=260
        )
        self.report_status = pn.pane.HTML("", sizing_mode="stretch_width")
        self.report_file = pn.widgets.FileDownload(
            label="download report", color="success", width=200, visible=False, embed=False
        )
        self.message = _message("")
        self.summary = pn.pane.HTML("", sizing_mode="stretch_width")
        self.epochs = pn.widgets.IntRangeSlider(
            label="epochs", start=0, end=1, value=(0, 1), step=1, width=360
        )
        self.split = pn.widgets.Select(label="split", options=["test"], width=160)
        self.history_plot, self.accuracy_plot = _plot(), _plot()
        # scalars: any numeric column of the history (losses, the strategy's coefficients), a column selector
        self.scalar_select = pn.widgets.MultiChoice(label="history columns", options=[], width=720)
        self.scalars_plot = pn.pane.Plotly(
            None, sizing_mode="stretch_width", config={"displaylogo": False}
        )
        self.overview = pn.Column(
            pn.Row(self.epochs, self.split),
            self.history_plot,
            self.accuracy_plot,
            pn.pane.HTML("<h3>Scalars</h3>"),
            self.scalar_select,
            self.scalars_plot,
            sizing_mode="stretch_width",
            name="overview",
        )
        # -- compare. Bokeh's MultiChoice draws its labels with choices.js as HTML (allowHTML): escaped labels, raw values
        default = [r for r in comparable_runs(self.table) if r in ids]
        self.compare_select = pn.widgets.MultiChoice(
            label="runs to compare", options={escape(i): i for i in ids}, value=default, width=720
        )
        self.compare_split = pn.widgets.Select(
            label="split", options=["test", "calib", "train"], width=160
        )
        self.compare_message = _message("")
        self.differ_grid = _table()
        self.differ_csv = _download(
            "settings that differ (CSV)", "settings_that_differ.csv", self._differ_frame
        )
        self.metric_select = pn.widgets.Select(
            label="metric", options=["acc_fused"], value="acc_fused", width=300
        )
        self.curve_select = pn.widgets.Select(label="learning curve of", options=[], width=300)
        self.compare_plot, self.seeds_plot = (
            _plot(),
            pn.pane.Plotly(None, sizing_mode="stretch_width"),
        )
        self.paired_plot = pn.pane.Plotly(
            None, sizing_mode="stretch_width", config={"displaylogo": False}
        )
        self.curves_plot = pn.pane.Plotly(
            None, sizing_mode="stretch_width", config={"displaylogo": False}
        )
        self.comparison = None
        self.summary_csv = _download(
            "per-configuration summary (CSV)",
            "comparison_summary.csv",
            lambda: self.comparison.summary if self.comparison else pd.DataFrame(),
        )
        self.paired_csv = _download(
            "paired differences (CSV)",
            "paired_differences.csv",
            lambda: self.comparison.paired if self.comparison else pd.DataFrame(),
        )
        # hyperparameter studies of this runs folder (workbench tune): metric against each hyperparameter
        studies = list_studies(self.store.root)
        self.study_select = pn.widgets.Select(
            label="hyperparameter study",
            options={escape(n): n for n in studies},
            value=studies[0] if studies else None,
            width=520,
            visible=bool(studies),
        )
        self.sensitivity = pn.Column(sizing_mode="stretch_width")
        self.compare = pn.Column(
            pn.Row(self.compare_select, self.compare_split),
            self.compare_message,
            pn.pane.HTML("<h3>How the chosen runs' settings differ</h3>"),
            self.differ_grid,
            self.differ_csv,
            pn.Row(self.metric_select, self.curve_select),
            self.seeds_plot,
            self.paired_plot,
            pn.Row(self.summary_csv, self.paired_csv),
            self.curves_plot,
            self.compare_plot,
            self.study_select,
            self.sensitivity,
            sizing_mode="stretch_width",
            name="compare runs",
        )
        # dynamic: only the shown tab is rendered; the comparison is drawn when first shown
        self.tabs = pn.Tabs(self.overview, self.compare, sizing_mode="stretch_width", dynamic=True)
        self._compare_drawn = False
        # the compare view is redrawn from several callbacks that run on the thread pool at once (ticking a
        # row, opening the tab, the split and metric selectors): one at a time, each from the state it reads
        self._compare_lock = threading.RLock()
        self.body = pn.Column(self.summary, self.tabs, sizing_mode="stretch_width")
        header = pn.pane.HTML(
            f"<h2>Multimodal Workbench</h2><p>runs folder: <code>{escape(self.store.root)}</code></p>"
        )
        self.layout = pn.Column(
            header,
            pn.Row(self.refresh_button, self.runs_csv),
            self.runs_grid,
            pn.Row(self.run_select, self.report_button, self.report_file),
            self.report_status,
            self.message,
            self.body,
            sizing_mode="stretch_width",
        )
        self.run_select.param.watch(lambda e: self.show_run(e.new), "value")
        self.runs_grid.param.watch(self._on_selection, "selection")
        self.refresh_button.on_click(lambda e: self.refresh(force=True))
        self.report_button.on_click(lambda e: self.write_report())
        self.epochs.param.watch(lambda e: self.redraw_history(e.new), "value_throttled")
        self.split.param.watch(lambda e: self.redraw_accuracy(), "value")
        self.scalar_select.param.watch(lambda e: self.redraw_scalars(), "value")
        self.compare_select.param.watch(lambda e: self.redraw_compare(), "value")
        self.compare_split.param.watch(lambda e: self.redraw_compare(), "value")
        self.metric_select.param.watch(lambda e: self.redraw_metric(), "value")
        self.curve_select.param.watch(lambda e: self.redraw_curves(), "value")
        self.study_select.param.watch(lambda e: self.redraw_sensitivity(), "value")
        self.tabs.param.watch(lambda e: self._on_tab(), "active")
        self._select_rows(default)
        if defer:
            self.body.loading = True
        else:
            self.start()

    def start(self) -> None:
        """Load and show the selected run (the expensive part of a page)."""
        self.show_run(self.run_select.value)

    # -- file access: only names listed here, only inside the runs folder -------------------------
    def _inside(self, path: Path) -> bool:
        return path.resolve().is_relative_to(self.root)

    def run_ids(self) -> list[str]:
        """Run folders listed in the runs folder that resolve inside it."""
        return [rid for rid in self.store.run_ids() if self._inside(self.store.root / rid)]

    def load(self, run_id: str) -> Run:
        """Load a listed run (through the shared LRU cache); raises with a clear message for a bad folder."""
        if run_id not in self.run_ids():
            raise ValueError(f"{run_id!r} is not a run in {self.store.root}")
        return self._cache.get(self.store, run_id)

    # -- the runs table -------------------------------------------------------------------------------
    def _grid_frame(self) -> pd.DataFrame:
        inside = set(self.run_ids()) | set(
            self.table.runs.loc[self.table.runs["status"] == "running", "run_id"]
        )
        frame = self.table.runs.loc[
            self.table.runs["run_id"].isin(inside), TABLE_COLUMNS
        ].reset_index(drop=True)
        text = [c for c in TABLE_COLUMNS if frame[c].dtype == object]
        return frame.astype({"seed": "Int64", "epochs": "Int64"}).fillna(dict.fromkeys(text, ""))

    def _differ_frame(self, run_ids: list[str] | None = None) -> pd.DataFrame:
        chosen = self.compare_select.value if run_ids is None else run_ids
        ids = [r for r in chosen if r in set(self.table.complete())]
        if len(ids) < 2:
            return pd.DataFrame({"parameter": []})
        return differing_parameters(self.table, ids).reset_index()

    def _select_rows(self, run_ids: list[str]) -> None:
        """Tick the rows of ``run_ids`` in the runs table (without re-triggering the selection callback)."""
        ids = self.runs_grid.value["run_id"].tolist() if len(self.runs_grid.value) else []
        self._selecting = True
        try:
            self.runs_grid.selection = [ids.index(r) for r in run_ids if r in ids]
        finally:
            self._selecting = False

    def _on_selection(self, event) -> None:
        """Ticked rows: the complete ones go to the comparison; a newly ticked row is shown in the overview."""
        if self._selecting:
            return
        frame = self.runs_grid.value
        picked = [frame["run_id"].iloc[i] for i in event.new if i < len(frame)]
        added = [
            frame["run_id"].iloc[i]
            for i in event.new
            if i not in set(event.old or []) and i < len(frame)
        ]
        folders = set(self.run_ids())
        if added and added[-1] in folders:
            self.run_select.value = added[-1]
        complete = [r for r in picked if r in set(self.table.complete()) and r in folders]
        if complete:
            self.compare_select.value = complete

    def _scan(self) -> tuple:
        """A cheap signature of the runs folder: folder names, their status files' and the locks' times."""

        def stamps(folder: Path, name: str) -> tuple:
            try:
                return tuple(
                    sorted(
                        (
                            e.name,
                            (Path(e.path) / name).stat().st_mtime_ns
                            if (Path(e.path) / name).exists()
                            else 0,
                        )
                        for e in os.scandir(folder)
                        if not e.name.startswith(".")
                    )
                )
            except OSError:
                return ()

        incomplete = self.store.root / ".incomplete"
        try:
            locks = tuple(sorted((e.name, e.stat().st_mtime_ns) for e in os.scandir(incomplete)))
        except OSError:
            locks = ()
        running = (
            tuple(self.table.runs.loc[self.table.runs["status"] == "running", "run_id"])
            if hasattr(self, "table")
            else ()
        )
        return stamps(self.store.root, "status.json"), locks, running

    def refresh(self, *, force: bool = False) -> bool:
        """Rescan the runs folder; when something changed (or ``force``) update the table and the pickers.

        Returns whether anything was updated. Served pages call it every :data:`POLL_MS` ms, so runs that
        finish while a page is open appear without a restart; the "refresh runs" button forces it.
        """
        signature = self._scan()
        table = None
        if not force and signature == self._signature:
            # a running run finishing changes status.json; a run starting adds a lock: both are in the signature
            if not (self.table.runs["status"] == "running").any():
                return False
            table = runs_table(self.store)
            if table.runs["status"].tolist() == self.table.runs["status"].tolist():
                return False
        # the table read once, and the signature taken before it: a change in between shows at the next poll
        self.table = table if table is not None else runs_table(self.store)
        self._signature = signature
        ids = self.run_ids()
        kept = [r for r in self.compare_select.value if r in ids]
        self.runs_grid.value = self._grid_frame()
        self.run_select.options = ids
        if self.run_select.value not in ids:
            self.run_select.value = ids[0] if ids else None
        self.compare_select.param.update(options={escape(i): i for i in ids}, value=kept)
        self._select_rows(kept)
        return True

    # -- callbacks ----------------------------------------------------------------------------------
    @contextmanager
    def _busy(self, target):
        target.loading = True
        try:
            yield
        finally:
            target.loading = False

    def show_run(self, run_id: str | None) -> None:
        """Switch the overview and the analysis tabs to ``run_id``; a bad run shows its error."""
        self.report_file.visible = False
        self.report_status.object = ""
        if run_id is None:
            self._fail(
                f"No runs in {self.store.root}. Make some with `workbench demo` or `workbench train`."
            )
            return
        with self._busy(self.body):
            try:
                run = self.load(run_id)
                self._populate(run)
            except (
                Exception
            ) as exc:  # UI boundary: any bad folder becomes a message, never a traceback
                self._fail(f"Run {run_id!r} cannot be shown: {type(exc).__name__}: {exc}")
                return
        _say(self.message, "")
        self.body.visible = True
        self.report_button.disabled = False

    def _fail(self, text: str) -> None:
        _say(self.message, text)
        self.body.visible = False
        self.report_button.disabled = True

    def _populate(self, run: Run) -> None:
        lo, hi = epoch_bounds(run)
        self.epochs.param.update(start=lo, end=max(hi, lo + 1), value=(lo, hi))
        splits = run_splits(run)
        self.split.param.update(options=splits, value=splits[0] if splits else None)
        results = load_run_results(run, self._inside)
        self.summary.object = run_summary_html(run) + run_takeaways_html(run, results)
        self.history_plot.object = history = history_figure(run.history)
        self.accuracy_plot.object = accuracy = accuracy_figure(
            run.accuracy(), split=self.split.value
        )
        self.history_plot.height, self.accuracy_plot.height = _height(history), _height(accuracy)
        columns = history_metrics([run])
        losses = [c for c in columns if c.endswith("loss")]
        strategy = [
            c
            for c in columns
            if c not in losses and not c.endswith("_acc") and "_acc_" not in c and c != "seconds"
        ]
        shown = list(self.scalar_select.value)
        self.scalar_select.param.update(
            options={escape(c): c for c in columns}, value=losses + strategy[:4] or columns[:1]
        )
        if list(self.scalar_select.value) == shown:  # else its watcher has just drawn them (once is enough)
            self.redraw_scalars()
        tabs = [self._result_tab(name, result) for name, result in results.items()]
        self.tabs[:] = [self.overview, *tabs, self.compare]
        self.tabs.active = 0

    def _result_tab(self, name: str, result) -> pn.viewable.Viewable:
        if isinstance(result, str):
            return pn.Column(_message(str(result)), name=name)
        try:
            return _tab_for(name, result)
        except Exception as exc:  # a broken figure builder must not hide the other analyses
            return pn.Column(
                _message(f"figures of {name!r} failed: {type(exc).__name__}: {exc}"), name=name
            )

    def current(self) -> Run:
        return self.load(self.run_select.value)

    def redraw_history(self, epochs: tuple[int, int]) -> None:
        # a new figure object: the pane does not re-send a figure mutated in place
        self.history_plot.object = show_epochs(go.Figure(self.history_plot.object), epochs)

    def redraw_accuracy(self) -> None:
        if self.split.value is not None:
            self.accuracy_plot.object = accuracy_figure(
                self.current().accuracy(), split=self.split.value
            )

    def redraw_scalars(self) -> None:
        """The chosen history columns of the shown run, one panel each."""
        try:
            self.scalars_plot.object = scalars_figure(
                self.current().history,
                list(self.scalar_select.value),
                title=f"Recorded scalars of {self.run_select.value}",
            )
        except Exception:  # UI boundary: a run with no numeric history shows no figure
            self.scalars_plot.object = None

    def write_report(self) -> Path | None:
        """Write the shown run's HTML report (:func:`workbench.cli.report.render_run_report`, the
        ``workbench report`` machinery) as ``RUN/report.html`` and offer it for download."""
        from workbench.cli.report import render_run_report

        run_id = self.run_select.value
        with self._busy(self.report_button):
            try:
                folder = self.load(run_id).path
                if folder is None or not self._inside(folder):
                    raise ValueError(f"run {run_id!r} has no folder inside {self.store.root}")
                path = render_run_report(folder, folder / "report.html")
            except Exception as exc:  # UI boundary
                self.report_status.object = f"<div>{escape(f'report of {run_id!r} failed: {type(exc).__name__}: {exc}')}</div>"
                return None
        self.report_file.file = str(
            path
        )  # sets the filename from the path: named after the run afterwards
        self.report_file.param.update(filename=f"{run_id}-report.html", visible=True)
        self.report_status.object = f"<div>report written: <code>{escape(path)}</code></div>"
        return path

    def _on_tab(self) -> None:
        if self.tabs[self.tabs.active] is self.compare and not self._compare_drawn:
            self.redraw_compare()

    def redraw_compare(self) -> None:
        """The chosen runs compared: their differing settings, every metric by configuration, paired
        differences, learning curves over seeds, accuracy per modality; bad runs are named and left out.

        Callbacks that redraw it run one at a time (ticking rows and opening the tab fire together);
        each reads the selection when it starts and publishes its comparison only once it is complete,
        so a redraw never reads another one's half-made state (a metric selector left empty while the
        plots were drawn, under load).
        """
        with self._compare_lock, self._busy(self.compare):
            runs, errors, chosen = {}, [], list(self.compare_select.value)
            for rid in chosen:
                try:
                    runs[rid] = self.load(rid)
                except Exception as exc:  # UI boundary, as in show_run
                    errors.append(f"left out {rid}: {exc}")
            self.compare_plot.object = comparison_figure_for(runs, self.compare_split.value)
            self._compare_drawn = True
            # Tabulator draws column titles as HTML (cells go through its plaintext formatter): the run ids
            # that head this table's columns are escaped
            differ = self._differ_frame(chosen)
            self.differ_grid.value = differ.rename(columns={c: escape(c) for c in differ.columns})
            comparison = None
            try:  # configurations across seeds, named by the settings that differ
                labels = self._labels(list(runs))
                comparison = compare_runs(list(runs.values()), labels) if runs else None
            except Exception as exc:  # UI boundary: e.g. runs without a shared configuration
                errors.append(f"across-seeds comparison: {exc}")
            self.comparison, self._runs_compared = comparison, runs
            metrics = comparison.metrics() if comparison is not None else []
            keep = (
                self.metric_select.value
                if self.metric_select.value in metrics
                else (metrics[:1] or [None])[0]
            )
            self.metric_select.param.update(options={escape(m): m for m in metrics}, value=keep)
            curves = history_metrics(runs.values())
            keep = (
                self.curve_select.value
                if self.curve_select.value in curves
                else ("heldout_acc" if "heldout_acc" in curves else (curves[:1] or [None])[0])
            )
            self.curve_select.param.update(options={escape(c): c for c in curves}, value=keep)
            self.redraw_metric()
            self.redraw_curves()
            _say(self.compare_message, "; ".join(errors))
        self.redraw_sensitivity()

    def _labels(self, run_ids: list[str]) -> dict[str, str]:
        known = set(self.table.complete())
        if all(r in known for r in run_ids):
            return configuration_labels(self.table, run_ids)
        return {r: r for r in run_ids}  # a run the table could not read: named by its id

    def redraw_metric(self) -> None:
        """Configurations and paired differences of the chosen metric."""
        with self._compare_lock:
            metric, comparison = self.metric_select.value, self.comparison
            if comparison is None or metric is None:
                self.seeds_plot.object = self.paired_plot.object = None
                return
            self.seeds_plot.object = configurations_figure(comparison, metric=metric)
            self.paired_plot.object = paired_figure(comparison, metric=metric)

    def redraw_curves(self) -> None:
        """Learning curves of the chosen history column, averaged over seeds per configuration, with bands."""
        with self._compare_lock:
            runs = getattr(self, "_runs_compared", {})
            metric = self.curve_select.value
            if not runs or metric is None:
                self.curves_plot.object = None
                return
            try:
                curves = seed_curves(list(runs.values()), metric, labels=self._labels(list(runs)))
                self.curves_plot.object = seed_curves_figure(curves, metric=metric)
            except Exception as exc:  # UI boundary
                self.curves_plot.object = None
                _say(self.compare_message, f"learning curves: {exc}")

    def redraw_sensitivity(self) -> None:
        """The sensitivity view of the selected study (one figure per hyperparameter, seeds as a range)."""
        name = self.study_select.value
        if name is None:
            self.sensitivity[:] = []
            return
        try:
            result = load_study_result(name, self.store.root)
            self.sensitivity[:] = [
                figure_view(fig) for fig in result_figures(name, result).values()
            ]
        except Exception as exc:  # UI boundary: a broken study folder becomes a message
            self.sensitivity[:] = [
                _message(f"study {name!r} cannot be shown: {type(exc).__name__}: {exc}")
            ]

    # -- the view in the URL --------------------------------------------------------------------------
    def tab_names(self) -> list[str]:
        return [t.name for t in self.tabs]

    def apply_query(self, query: dict[str, str]) -> None:
        """Open the view a link names: ``?run=RUN_ID&tab=TAB_NAME`` (unknown values are ignored)."""
        run = query.get("run")
        if run in self.run_ids() and run != self.run_select.value:
            self.run_select.value = run
        tab = query.get("tab")
        if tab in self.tab_names():
            self.tabs.active = self.tab_names().index(tab)

    def query(self) -> dict[str, str]:
        """The view as URL query parameters (the inverse of :meth:`apply_query`)."""
        out = {"run": self.run_select.value or ""}
        if self.tabs.active < len(self.tabs):
            out["tab"] = self.tabs[self.tabs.active].name
        return out


def create_app(runs_dir: str | Path | None = None) -> pn.viewable.Viewable:
    """A fresh dashboard page (one per browser session).

    In a served session the run is loaded and drawn by a threaded onload callback (see the
    module docstring), which then opens the view the page's link names (``?run=...&tab=...``)
    and keeps the link up to date; a periodic callback rescans the runs folder every
    :data:`POLL_MS` ms. Outside a server (a notebook, a test) ``onload`` runs at once.
    """
    pn.extension("plotly", "tabulator")
    dashboard = Dashboard(runs_dir, defer=True)
    location = pn.state.location  # the session's, captured here: start() runs on a pool thread

    def start() -> None:
        with pn.io.hold():  # the run's figures, summary and result tabs reach the page together
            dashboard.start()
        if location is None:
            return
        dashboard.apply_query({k: str(v) for k, v in (location.query_params or {}).items()})

        def push(*_) -> None:
            location.update_query(**dashboard.query())  # history.replaceState in the page

        dashboard.run_select.param.watch(push, "value")
        dashboard.tabs.param.watch(push, "active")
        push()

    def poll() -> None:
        try:
            dashboard.refresh()
        except Exception:  # noqa: BLE001 - a runs folder changing under the scan: try again next time
            pass

    pn.state.onload(start, threaded=True)
    if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
        pn.state.add_periodic_callback(poll, period=POLL_MS)
    return dashboard.layout


def _warm_up(root: Path) -> None:
    """Build one page before listening, so the first visitor does not pay the imports
    (plotly express, pyarrow, the figure modules) and first-figure costs.

    Panel's plotly pane checks ``isinstance(obj, go.FigureWidget)`` when a session's first figure is
    sent; that name's lazy import (``plotly.basewidget`` -> nbformat -> jsonschema, which builds an
    RFC 3987 grammar) took 1.7 s idle and up to 7 s on a busy machine, on the server's event loop,
    so the first visitor's figures waited for it. A page built outside a server sends no figure, so
    the import is done here.
    """
    _ = go.FigureWidget
    try:
        create_app(root)
    except Exception:  # noqa: BLE001 - a broken runs folder is reported in the page, not at start-up
        pass


class PortInUseError(RuntimeError):
    """``workbench serve`` on an address something else already listens on."""


def check_port(host: str, port: int) -> None:
    """Raise :class:`PortInUseError` (one line, no traceback in the CLI) when ``host:port`` cannot be bound.

    Examples
    --------
    >>> with socket.socket() as s:
    ...     s.bind(("127.0.0.1", 0)); s.listen(); busy = s.getsockname()[1]
    ...     check_port("127.0.0.1", busy)
    Traceback (most recent call last):
    ...
    widgets.dashboard.PortInUseError: port ... on 127.0.0.1 is already in use (another `workbench serve`?): stop that process or choose another port with --port
    """
    with socket.socket(
        socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM
    ) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError(
                    f"port {port} on {host} is already in use (another `workbench serve`?): "
                    "stop that process or choose another port with --port"
                ) from None
            raise PortInUseError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


class _QuietClosedSockets(logging.Filter):
    """Drop the log records (with tracebacks) that tornado and bokeh write when a browser tab closes
    while the server is still sending to it: nothing is wrong, the page is simply gone."""

    NAMES = ("WebSocketClosedError", "StreamClosedError")

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and type(exc).__name__ in self.NAMES:
            return False
        return not any(name in record.getMessage() for name in self.NAMES)


QUIET_LOGGERS = (
    "tornado.application",
    "tornado.general",
    "asyncio",
    "bokeh.server.views.ws",
    "bokeh.server.protocol_handler",
    "bokeh.server.connection",
    "bokeh.server.session",
    "bokeh.util.tornado",
    "bokeh.document.document",
)


def quiet_closed_sockets() -> None:
    """Install :class:`_QuietClosedSockets` on the loggers that report closed websockets (once)."""
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _QuietClosedSockets) for f in logger.filters):
            logger.addFilter(_QuietClosedSockets())


def serve(
    runs_dir: str | Path | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 5006,
    show: bool = False,
    threaded: bool = False,
    num_threads: int = 8,
    plotly: str = "cartesian",
    cache_size: int = RUN_CACHE_SIZE,
):
    """Serve the dashboard on ``http://host:port/`` (blocks unless ``threaded``; then returns the server thread).

    Parameters
    ----------
    runs_dir : path, optional
        The runs folder (default ``./runs`` or ``$WORKBENCH_RUNS``, where ``workbench demo`` writes).
    host, port : str, int
        Address to listen on; loopback by default.
    plotly : {"cartesian", "full"}
        The plotly.js build pages load (:mod:`widgets.plotly_bundle`): the light cartesian one
        (first page about a second sooner) or Panel's full one, for figures of other trace types.
    num_threads : int
        Panel's thread pool: sessions load and draw runs, and run their callbacks, on it.
    cache_size : int
        How many loaded runs the process keeps (LRU, shared by every session).
    """
    if num_threads < 1:
        raise ValueError(f"num_threads must be at least 1, got {num_threads}")
    check_port(host, port)  # before the warm-up page: a busy port fails in one line, at once
    quiet_closed_sockets()
    global RUNS
    RUNS = RunCache(cache_size)
    # pn.serve silently ignores a num_threads keyword (only `panel serve --num-threads` sets it):
    # the pool comes from config.nthreads, which starts it; a pool already running is kept
    if pn.state._thread_pool is None:
        pn.config.nthreads = num_threads
    root = Path(runs_dir) if runs_dir is not None else default_runs_dir()
    static_dirs = use_bundle(plotly)
    _warm_up(root)
    return pn.serve(
        lambda: create_app(root),
        address=host,
        port=port,
        show=show,
        threaded=threaded,
        websocket_origin=[f"{host}:{port}", f"localhost:{port}"],
        title="Multimodal Workbench",
        start=True,
        verbose=False,
        static_dirs=static_dirs,
    )
