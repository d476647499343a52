from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)  # 2-core CI: keep tests from fighting each other


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Every test writes runs and user cards under its own tmp folder."""
    monkeypatch.setenv("WORKBENCH_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home"))


CHROMIUM = "/usr/bin/chromium"
# CI sets this: there a missing browser fails the browser tests instead of skipping them
BROWSER_REQUIRED = os.environ.get("WORKBENCH_REQUIRE_BROWSER") == "1"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Under ``pytest -n 2 --dist loadgroup`` (the README's test command) a module's tests run in one
    worker, so its module-scoped fixtures (a trained model, a served dashboard) are built once; each
    notebook is its own group, so the notebooks spread over the workers."""
    for item in items:
        path = Path(str(item.fspath))
        name = f"{path.parent.name}/{path.name}"
        if path.stem == "test_notebooks" and hasattr(item, "callspec"):
            name += f"[{item.callspec.id}]"
        item.add_marker(pytest.mark.xdist_group(name))
    # browser tests (tests/browser/ and those marked ``browser``) skip, visibly, without Chromium
    if BROWSER_REQUIRED or Path(CHROMIUM).exists():
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} not found (apt-get install -y chromium); browser tests "
                                   "skip here and are required in CI (WORKBENCH_REQUIRE_BROWSER=1)")
    for item in items:
        if "browser" in item.keywords or "browser" in Path(str(item.fspath)).parts:
            item.add_marker(skip)


class _KillAfter:
    """A trainer callback that interrupts training at the end of epoch ``at`` (0-based), after the
    checkpoint of the previous epoch: a kill between epochs."""

    def __init__(self, at: int):
        self.at = at

    def on_epoch_end(self, ctx, epoch, row):
        if epoch == self.at:
            raise KeyboardInterrupt


@pytest.fixture
def kill_after():
    """``kill_after(n)``: a callback that stops a Trainer during epoch ``n + 1`` (see :class:`_KillAfter`)."""
    return _KillAfter
