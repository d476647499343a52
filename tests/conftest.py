from __future__ import annotations

import pytest
import torch

torch.set_num_threads(1)  # 2-core CI: keep tests from fighting each other


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Every test writes runs and user cards under its own tmp folder."""
    monkeypatch.setenv("WORKBENCH_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home"))
