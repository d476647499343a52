"""The served Panel dashboard over a run folder (``workbench serve``).

One page per browser session: a run picker; the run overview (summary, learning curves with an
epoch-range slider, accuracy per modality with a split selector); one tab per saved analysis with
its figures (registered by result class in :mod:`widgets.registry`; a table when none is); and a
comparison tab with the accuracy per modality of several runs side by side.

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
never Markdown panes, and figures whose text the builders escaped.

Example
-------
>>> from widgets.dashboard import serve        # doctest: +SKIP
>>> serve("runs", port=5006)                    # doctest: +SKIP
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path

import panel as pn
import plotly.graph_objects as go

from widgets.figures.result import result_figures, table_frame
from widgets.figures.run import accuracy_figure, history_figure, runs_accuracy_figure, show_epochs
from widgets.plotly_bundle import served_bundle, unsupported_traces, use_bundle
from widgets.summary import epoch_bounds, load_run_results, run_splits, run_summary_html
from widgets.text import escape
from workbench.jobs.tune import list_studies, load_study_result
from workbench.store.runs import Run, RunStore, default_runs_dir

PLOT_HEIGHT = 380
RUN_CACHE_SIZE = 32  # runs kept loaded per server process (predictions of a big run: tens of MB each)


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
        stamps = tuple((folder / f).stat().st_mtime_ns if (folder / f).exists() else None
                       for f in ("status.json", "config.json"))
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


def seeds_comparison_figure(runs: dict[str, Run]) -> go.Figure:
    """Configurations compared across seeds (``workbench.analyses.compare`` + its figure builder)."""
    from widgets.figures.compare import comparison_figure
    from workbench.analyses.compare import compare

    return comparison_figure(compare(list(runs.values())))


def _plot(fig: go.Figure | None = None) -> pn.pane.Plotly:
    return pn.pane.Plotly(fig, height=PLOT_HEIGHT, sizing_mode="stretch_width", config={"displaylogo": False})


def figure_view(fig: go.Figure) -> pn.viewable.Viewable:
    """``fig`` as a plotly pane; a table figure as an HTML table; a message for trace types
    the served plotly.js build cannot draw (see :mod:`widgets.plotly_bundle`)."""
    missing = unsupported_traces(fig, served_bundle())
    if missing == ["table"] and all(t.type == "table" for t in fig.data):
        return pn.pane.DataFrame(table_frame(fig), index=False, sizing_mode="stretch_width", max_height=PLOT_HEIGHT)
    if missing:
        return _message(f"This figure uses plotly trace types {missing}, which the dashboard's light plotly.js "
                        "build leaves out; restart it with `workbench serve --plotly full` to draw it.")
    return _plot(fig)


_ALERT_STYLE = {"background": "#f8d7da", "color": "#842029", "border": "1px solid #f5c2c7",
                "border-radius": "4px", "padding": "0.6em 1em"}


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
        self.selector = pn.widgets.Select(label="figure", options=titles, value=titles[0], width=420)
        self.view = pn.Column(figure_view(self.figures[titles[0]]), sizing_mode="stretch_width")
        self.selector.param.watch(self._show, "value")
        super().__init__(self.selector, self.view, sizing_mode="stretch_width", name=name)

    def _show(self, event) -> None:
        fig = self.figures[event.new]
        view = figure_view(fig)
        if isinstance(self.view[0], pn.pane.Plotly) and isinstance(view, pn.pane.Plotly):
            self.view[0].object = fig  # update in place: no new plot model in the browser
        else:
            self.view[:] = [view]


class Dashboard:
    """The widgets and callbacks of one dashboard session over ``runs_dir``."""

    def __init__(self, runs_dir: str | Path | None = None, *, defer: bool = False, cache: RunCache | None = None):
        """``defer``: build the widgets only; :meth:`start` loads and draws the first run (the
        served page calls it from a threaded onload callback). ``cache``: where loaded runs are
        kept (default the process-wide :data:`RUNS`)."""
        self.store = RunStore(runs_dir if runs_dir is not None else default_runs_dir())
        self.root = self.store.root.resolve()
        self._cache = cache if cache is not None else RUNS
        ids = self.run_ids()
        self.run_select = pn.widgets.Select(label="run", options=ids, value=ids[0] if ids else None, width=520)
        self.message = _message("")
        self.summary = pn.pane.HTML("", sizing_mode="stretch_width")
        self.epochs = pn.widgets.IntRangeSlider(label="epochs", start=0, end=1, value=(0, 1), step=1, width=360)
        self.split = pn.widgets.Select(label="split", options=["test"], width=160)
        self.history_plot, self.accuracy_plot = _plot(), _plot()
        self.overview = pn.Column(pn.Row(self.epochs, self.split), self.history_plot, self.accuracy_plot,
                                  sizing_mode="stretch_width", name="overview")
        # Bokeh's MultiChoice draws its labels with choices.js as HTML (allowHTML): escaped labels, raw values
        self.compare_select = pn.widgets.MultiChoice(label="runs to compare", options={escape(i): i for i in ids},
                                                     value=ids[:2], width=720)
        self.compare_split = pn.widgets.Select(label="split", options=["test", "calib", "train"], width=160)
        self.compare_message = _message("")
        self.compare_plot, self.seeds_plot = _plot(), _plot()
        # hyperparameter studies of this runs folder (workbench tune): metric against each hyperparameter
        studies = list_studies(self.store.root)
        self.study_select = pn.widgets.Select(label="hyperparameter study", options={escape(n): n for n in studies},
                                              value=studies[0] if studies else None, width=520, visible=bool(studies))
        self.sensitivity = pn.Column(sizing_mode="stretch_width")
        self.compare = pn.Column(pn.Row(self.compare_select, self.compare_split), self.compare_message,
                                 self.compare_plot, self.seeds_plot, self.study_select, self.sensitivity,
                                 sizing_mode="stretch_width", name="compare runs")
        # dynamic: only the shown tab is rendered; the comparison is drawn when first shown
        self.tabs = pn.Tabs(self.overview, self.compare, sizing_mode="stretch_width", dynamic=True)
        self._compare_drawn = False
        self.body = pn.Column(self.summary, self.tabs, sizing_mode="stretch_width")
        header = pn.pane.HTML(f"<h2>Multimodal Workbench</h2><p>runs folder: <code>{escape(self.store.root)}</code></p>")
        self.layout = pn.Column(header,
                                self.run_select, self.message, self.body, sizing_mode="stretch_width")
        self.run_select.param.watch(lambda e: self.show_run(e.new), "value")
        self.epochs.param.watch(lambda e: self.redraw_history(e.new), "value_throttled")
        self.split.param.watch(lambda e: self.redraw_accuracy(), "value")
        self.compare_select.param.watch(lambda e: self.redraw_compare(), "value")
        self.compare_split.param.watch(lambda e: self.redraw_compare(), "value")
        self.study_select.param.watch(lambda e: self.redraw_sensitivity(), "value")
        self.tabs.param.watch(lambda e: self._on_tab(), "active")
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
        if run_id is None:
            self._fail(f"No runs in {self.store.root}. Make some with `workbench demo` or `workbench train`.")
            return
        with self._busy(self.body):
            try:
                run = self.load(run_id)
                self._populate(run)
            except Exception as exc:  # UI boundary: any bad folder becomes a message, never a traceback
                self._fail(f"Run {run_id!r} cannot be shown: {type(exc).__name__}: {exc}")
                return
        _say(self.message, "")
        self.body.visible = True

    def _fail(self, text: str) -> None:
        _say(self.message, text)
        self.body.visible = False

    def _populate(self, run: Run) -> None:
        lo, hi = epoch_bounds(run)
        self.epochs.param.update(start=lo, end=max(hi, lo + 1), value=(lo, hi))
        splits = run_splits(run)
        self.split.param.update(options=splits, value=splits[0] if splits else None)
        self.summary.object = run_summary_html(run)
        self.history_plot.object = history_figure(run.history)
        self.accuracy_plot.object = accuracy_figure(run.accuracy(), split=self.split.value)
        tabs = [self._result_tab(name, result) for name, result in load_run_results(run, self._inside).items()]
        self.tabs[:] = [self.overview, *tabs, self.compare]
        self.tabs.active = 0

    def _result_tab(self, name: str, result) -> pn.viewable.Viewable:
        if isinstance(result, str):
            return pn.Column(_message(str(result)), name=name)
        try:
            return ResultTab(name, result)
        except Exception as exc:  # a broken figure builder must not hide the other analyses
            return pn.Column(_message(f"figures of {name!r} failed: {type(exc).__name__}: {exc}"), name=name)

    def current(self) -> Run:
        return self.load(self.run_select.value)

    def redraw_history(self, epochs: tuple[int, int]) -> None:
        # a new figure object: the pane does not re-send a figure mutated in place
        self.history_plot.object = show_epochs(go.Figure(self.history_plot.object), epochs)

    def redraw_accuracy(self) -> None:
        if self.split.value is not None:
            self.accuracy_plot.object = accuracy_figure(self.current().accuracy(), split=self.split.value)

    def _on_tab(self) -> None:
        if self.tabs[self.tabs.active] is self.compare and not self._compare_drawn:
            self.redraw_compare()

    def redraw_compare(self) -> None:
        """Accuracy per modality of the selected runs; bad runs are named in a message and left out."""
        with self._busy(self.compare):
            runs, errors = {}, []
            for rid in self.compare_select.value:
                try:
                    runs[rid] = self.load(rid)
                except Exception as exc:  # UI boundary, as in show_run
                    errors.append(f"left out {rid}: {exc}")
            self.compare_plot.object = comparison_figure_for(runs, self.compare_split.value)
            self._compare_drawn = True
            try:  # configurations across seeds, with intervals, where the comparison analysis applies
                self.seeds_plot.object = seeds_comparison_figure(runs) if runs else None
            except Exception as exc:  # UI boundary: e.g. runs without a shared configuration
                self.seeds_plot.object = None
                errors.append(f"across-seeds comparison: {exc}")
            _say(self.compare_message, "; ".join(errors))
        self.redraw_sensitivity()

    def redraw_sensitivity(self) -> None:
        """The sensitivity view of the selected study (one figure per hyperparameter, seeds as a range)."""
        name = self.study_select.value
        if name is None:
            self.sensitivity[:] = []
            return
        try:
            result = load_study_result(name, self.store.root)
            self.sensitivity[:] = [figure_view(fig) for fig in result_figures(name, result).values()]
        except Exception as exc:  # UI boundary: a broken study folder becomes a message
            self.sensitivity[:] = [_message(f"study {name!r} cannot be shown: {type(exc).__name__}: {exc}")]


def create_app(runs_dir: str | Path | None = None) -> pn.viewable.Viewable:
    """A fresh dashboard page (one per browser session).

    In a served session the run is loaded and drawn by a threaded onload callback (see the
    module docstring); outside a server (a notebook, a test) ``onload`` runs it at once.
    """
    pn.extension("plotly")
    dashboard = Dashboard(runs_dir, defer=True)
    pn.state.onload(dashboard.start, threaded=True)
    return dashboard.layout


def _warm_up(root: Path) -> None:
    """Build one page before listening, so the first visitor does not pay the imports
    (plotly express, pyarrow, the figure modules) and first-figure costs."""
    try:
        create_app(root)
    except Exception:  # noqa: BLE001 - a broken runs folder is reported in the page, not at start-up
        pass


def serve(runs_dir: str | Path | None = None, *, host: str = "127.0.0.1", port: int = 5006, show: bool = False,
          threaded: bool = False, num_threads: int = 8, plotly: str = "cartesian", cache_size: int = RUN_CACHE_SIZE):
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
    global RUNS
    RUNS = RunCache(cache_size)
    # pn.serve silently ignores a num_threads keyword (only `panel serve --num-threads` sets it):
    # the pool comes from config.nthreads, which starts it; a pool already running is kept
    if pn.state._thread_pool is None:
        pn.config.nthreads = num_threads
    root = Path(runs_dir) if runs_dir is not None else default_runs_dir()
    static_dirs = use_bundle(plotly)
    _warm_up(root)
    return pn.serve(lambda: create_app(root), address=host, port=port, show=show, threaded=threaded,
                    websocket_origin=[f"{host}:{port}", f"localhost:{port}"], title="Multimodal Workbench",
                    start=True, verbose=False, static_dirs=static_dirs)
