"""Every notebook in notebooks/ runs under papermill with its small default parameters.

Each notebook asserts its key results in its last cell, so a regression fails here. The executed
copy is rendered by ``workbench report``'s writer into ``test-artifacts/notebooks/NAME.html``, the
notebook's HTML twin (CI keeps it; the notebooks themselves are stored without outputs).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from workbench.cli.report import PLOTLY_MIME, WIDGET_VIEW, execute_notebook, notebook_to_html

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
TWINS = REPO / "test-artifacts" / "notebooks"
PROGRESS = re.compile(r"\d+%\|")  # tqdm's text line, e.g. "train mfeat:   0%|          | 0/30"
FIGURE_DIV = re.compile(r"""class=["'](?:plotly-graph-div|workbench-plot)["']""")


def _figures_shown(executed: Path) -> int:
    """How many plotly figures the executed notebook's outputs hold: the HTML ones (figures, panels'
    static copies) and the plotly mime bundles (figures shown with plotly's default kernel renderer)."""
    nb = nbformat.read(executed, as_version=4)
    outputs = [o.get("data", {}) for c in nb.cells for o in c.get("outputs", [])]
    return sum(len(FIGURE_DIV.findall(str(d.get("text/html", "")))) or int(PLOTLY_MIME in d) for d in outputs)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(notebook: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WORKBENCH_RUNS", str(tmp_path / "runs"))
    executed = execute_notebook(notebook, tmp_path / notebook.name, cwd=notebook.parent)
    # every widget the notebook shows is followed by its static copy, which a saved notebook and the twin
    # draw (tqdm's progress bars aside: the twin leaves them out)
    for cell in nbformat.read(executed, as_version=4).cells:
        shown = [o.get("data", {}) for o in cell.get("outputs", [])]
        for data, after in zip(shown, [*shown[1:], {}], strict=False):  # an output and the one after it
            if WIDGET_VIEW in data and not PROGRESS.search(data.get("text/plain", "")):
                assert "workbench-static-panel" in after.get("text/html", ""), data.get("text/plain")
    twin = notebook_to_html(executed, TWINS / f"{notebook.stem}.html", hide_code=False)
    page = twin.read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]*\bsrc=[\"']?https?:", page)  # opens offline
    assert len(FIGURE_DIV.findall(page)) >= _figures_shown(executed) > 0  # every figure of the notebook is there
