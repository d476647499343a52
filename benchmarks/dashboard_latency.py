"""Dashboard latency in a real browser: time to first page shown, and time for a control to re-draw.

Starts ``workbench serve`` (a subprocess, as a user would) over small runs made here
(synthetic-imbalance, n=300, 10 epochs, two seeds) or over ``--runs-dir``, opens it in headless
Chromium and measures, from the test driver's side (wall clock, including the WebSocket round trip):

* first page, cold: navigation until the history and accuracy figures are drawn, fresh browser profile;
* first page, warm: the same after a reload (browser cache holds plotly.js/bokeh.js);
* slider re-draw: mouse-up on the epoch slider until the history figure's x-range changed;
* split re-draw: choosing another split until the accuracy figure shows it.

    PYTHONPATH=$PWD python benchmarks/dashboard_latency.py [--repeats 5] [--runs-dir DIR]

Targets: first page < 3 s, slider re-draw < 300 ms.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

from widgets import browser


def make_runs(root: Path, epochs: int = 10) -> Path:
    from workbench.runs import train

    for seed in (0, 1):
        train("synthetic-imbalance", epochs=epochs, seed=seed, runs_dir=root, dataset_params={"n": 300}, progress=False)
    return root


def time_slider(page, fraction: float) -> float:
    before = browser.history_plot(page)["xrange"]
    browser.drag_slider_handle(page, ".noUi-handle-upper", fraction)
    t0 = time.perf_counter()
    browser.wait_until(lambda: (h := browser.history_plot(page)) and h["xrange"] != before, timeout=30, poll=0.005)
    return time.perf_counter() - t0


def time_split(page, split: str) -> float:
    t0 = time.perf_counter()
    page.locator("select").nth(1).select_option(split)
    title = f"Accuracy on the {split} split"
    browser.wait_until(lambda: any(p["title"] == title for p in browser.visible_plots(page)), timeout=30, poll=0.005)
    return time.perf_counter() - t0


def measure(runs_dir: Path, repeats: int) -> pd.DataFrame:
    rows: list[tuple[str, float]] = []
    with browser.dashboard_server(runs_dir) as url, browser.chromium() as page:
        rows.append(("first page, cold browser", browser.open_dashboard(page, url)))
        for _ in range(repeats):
            rows.append(("first page, warm browser cache", browser.open_dashboard(page, url)))
        for i in range(repeats):
            # alternate the upper handle between 30% and the right end so every move changes the range
            rows.append(("slider re-draw", time_slider(page, 0.3 if i % 2 == 0 else 1.0)))
        for i in range(repeats):
            rows.append(("split re-draw", time_split(page, ["train", "test"][i % 2])))
    return pd.DataFrame(rows, columns=["measure", "seconds"])


def summarize(raw: pd.DataFrame) -> pd.DataFrame:
    targets = {"first page, cold browser": 3.0, "first page, warm browser cache": 3.0, "slider re-draw": 0.3,
               "split re-draw": 0.3}
    table = raw.groupby("measure", sort=False)["seconds"].agg(n="count", median="median", max="max").reset_index()
    table["target"] = table["measure"].map(targets)
    table["met"] = table["median"] < table["target"]
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", help="serve these runs instead of making small ones")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    browser.require_chromium()
    with tempfile.TemporaryDirectory() as tmp:
        runs_dir = Path(args.runs_dir) if args.runs_dir else make_runs(Path(tmp) / "runs")
        table = summarize(measure(runs_dir, args.repeats))
    with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 120):
        print(table.to_string(index=False))
    print(f"(median of {args.repeats} where repeated; n cores: {len(os.sched_getaffinity(0))}, "
          f"load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
