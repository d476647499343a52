"""A saved learning-curve result in the served dashboard, in headless Chromium: its tab draws the
learning curves (with the crossover) and, through the figure selector, the connection map."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from widgets import browser
from workbench import load_dataset
from workbench.analyses.learning_curves import learning_curves
from workbench.training.train import train

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = pytest.mark.skipif(os.environ.get("WORKBENCH_SKIP_BROWSER") == "1",
                                reason="WORKBENCH_SKIP_BROWSER=1 set")


def values(array) -> list:
    """A plotly.js data array as a list: numeric arrays arrive as typed arrays (JSON: index -> value)."""
    if isinstance(array, dict):
        return [array[str(i)] for i in range(sum(k.isdigit() for k in array))]
    return list(array)


def test_learning_curve_tab_in_browser(tmp_path: Path) -> None:
    if not Path(browser.CHROMIUM).exists():
        pytest.fail(f"{browser.CHROMIUM} is missing: install it with `{browser.INSTALL_HINT}`")
    root = tmp_path / "runs"
    run = train("synthetic-imbalance", epochs=2, seed=0, runs_dir=root, dataset_params={"n": 200}, progress=False)
    res = learning_curves(load_dataset("synthetic-xor", n=300), sizes=[40, 80, 160], seeds=[0, 1], epochs=3,
                          progress=False)
    run.save_result("curves", res)
    ARTIFACTS.mkdir(exist_ok=True)
    with browser.chromium() as page, browser.dashboard_thread(root) as url:
        browser.open_dashboard(page, url)
        page.locator(".bk-tab", has_text="curves").first.click()
        shown = browser.wait_until(lambda: [p for p in browser.visible_plots(page)
                                            if p["title"].startswith("Learning curves per coalition: test accuracy")])
        traces = json.loads(shown[0]["sig"])
        full = res.curves[res.curves["size"] == 3].sort_values("n")
        line = [t for t in traces if t[0] == f"{full['coalition'].iloc[0]} (all)"]
        assert line and values(line[0][2]) == pytest.approx(full["accuracy"].tolist())
        page.screenshot(path=str(ARTIFACTS / "dashboard_learning_curves.png"))
        page.locator("select").nth(1).select_option("Connection and heterogeneity per pair of modalities")
        heat = browser.wait_until(lambda: [p for p in browser.visible_plots(page)
                                           if p["title"] == "Connection and heterogeneity per pair of modalities"])
        assert set(values(json.loads(heat[0]["sig"])[0][1])) == {"a", "b", "noise"}
        assert not page.get_by_text("leaves out").count()  # heat maps are in the light plotly.js build
        page.screenshot(path=str(ARTIFACTS / "dashboard_connection_map.png"))
