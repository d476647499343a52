"""Every notebook in notebooks/ runs under papermill with its small default parameters.

Each notebook asserts its key results in its last cell, so a regression fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.cli.report import execute_notebook

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(notebook: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WORKBENCH_RUNS", str(tmp_path / "runs"))
    execute_notebook(notebook, tmp_path / notebook.name, cwd=notebook.parent)
