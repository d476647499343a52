"""JupyterLab panel latency: time to first panel, a second panel in the same page, figure switches.

Runs JupyterLab on loopback over a temporary folder with a copy of the pre-layout fixture run (a
gap and a fairness result), opens a notebook in headless Chromium, runs a warm-up cell (imports),
then shows the run panel twice and switches every figure of its result tabs, and prints a table
(median and max over ``--repeat`` pages). ``--checkout PATH`` measures the panels of another
checkout (e.g. an older commit in a git worktree) with the same page and timers; ``--run DIR``
shows another run folder instead (e.g. the one ``workbench demo`` writes: mfeat, a gap result over
its 21 modality pairs and a Shapley result over its 63 coalitions), switching every figure of each
of its result tabs.

    python benchmarks/jupyterlab_latency.py [--repeat 3] [--checkout /path/to/other/checkout] [--run runs/RUN]
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from widgets import browser  # noqa: E402
from widgets.lab_browser import drawn, jupyterlab, open_notebook, run_cell, wait_prompt  # noqa: E402

FIXTURE = REPO / "tests" / "fixtures" / "pre_layout_run"
SHOW = "from workbench import load_run\nload_run('run')"


def one_page(checkout: Path, run: Path = FIXTURE) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copytree(run, root / "run")
        result_tabs = sorted(p.name for p in (run / "results").iterdir()) if (run / "results").is_dir() else []
        warm = f"import sys; sys.path.insert(0, {str(checkout)!r})\nimport workbench, widgets.panels.base"
        nb = new_notebook(cells=[new_code_cell(warm), new_code_cell(SHOW), new_code_cell(SHOW)])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, root / "panel.ipynb")
        out: dict[str, list[float]] = {"first panel: its tabs shown": [], "first panel in the page": [],
                                       "second panel in the page": [], "figure switch": []}
        with jupyterlab(root, pythonpath=checkout) as url, browser.chromium(width=1400, height=1100) as page:
            open_notebook(page, url, "panel.ipynb")
            run_cell(page, 0)
            wait_prompt(page, 0, 1)
            for cell, n_plots, key in ((1, 2, "first panel in the page"), (2, 4, "second panel in the page")):
                t = time.perf_counter()
                run_cell(page, cell)
                if cell == 1:  # the kernel built the panel and the page made its widgets; no figure drawn yet
                    tabs = page.locator(".jp-OutputArea").nth(1).locator(".widget-tab")
                    browser.wait_until(lambda tabs=tabs: tabs.count() > 0, 120, poll=0.005)
                    out["first panel: its tabs shown"].append(time.perf_counter() - t)
                browser.wait_until(lambda n=n_plots: len(drawn(page)) >= n, 120, poll=0.005)
                out[key].append(time.perf_counter() - t)
            panel = page.locator(".jp-OutputArea").nth(1)  # the first panel's output
            for name in result_tabs:  # every option of every selector of each result tab, then back
                panel.locator(".widget-tab .lm-TabBar-tab").filter(has_text=re.compile(f"^{name}$")).click()
                selects = panel.locator(".widget-dropdown select >> visible=true")
                for j in range(selects.count()):
                    select = selects.nth(j)
                    n_options = select.locator("option").count()
                    for i in [*range(1, n_options), 0] if n_options > 1 else []:
                        before = sorted(d["title"] for d in drawn(page))
                        t = time.perf_counter()
                        select.select_option(index=i)
                        browser.wait_until(lambda before=before: sorted(d["title"] for d in drawn(page)) != before,
                                           30, poll=0.005)
                        out["figure switch"].append(time.perf_counter() - t)
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--checkout", type=Path, default=REPO, help="checkout whose panels are measured")
    parser.add_argument("--run", type=Path, default=FIXTURE, help="run folder shown (default: the pre-layout fixture)")
    args = parser.parse_args()
    rows: dict[str, list[float]] = {}
    for _ in range(args.repeat):
        for key, values in one_page(args.checkout.resolve(), args.run.resolve()).items():
            rows.setdefault(key, []).extend(values)
    print(f"JupyterLab panels of {args.checkout.resolve()}, run {args.run.name} ({args.repeat} pages)\n")
    print("| measure | median | max | n |\n|---|---|---|---|")
    for key, values in rows.items():
        print(f"| {key} | {statistics.median(values):.2f} s | {max(values):.2f} s | {len(values)} |")


if __name__ == "__main__":
    main()
