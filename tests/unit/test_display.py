"""workbench.display: the one core->UI edge shows a panel when the UI has one, escaped tables otherwise."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pandas as pd
import pytest
from IPython.display import HTML

import workbench.display as display_mod
from workbench.store.results import Result
from workbench.store.runs import Run

PAYLOAD = '<script>alert("x")</script>'


@dataclass
class Scores(Result):
    scores: pd.DataFrame
    extra: pd.DataFrame
    note: str = ""


@dataclass
class SubScores(Scores):
    pass


def scores() -> Scores:
    return Scores(pd.DataFrame({"modality": [PAYLOAD, "b"], "score": [0.5, 0.25]}),
                  pd.DataFrame({PAYLOAD: [1]}))


@pytest.fixture
def shown(monkeypatch) -> list:
    """What IPython's ``display`` was called with."""
    calls: list = []
    monkeypatch.setattr("IPython.display.display", lambda *objs, **kw: calls.extend(objs))
    return calls


@pytest.fixture
def no_ui(monkeypatch) -> None:
    """The UI is not installed: importing ``widgets.registry`` raises ImportError."""
    monkeypatch.setitem(sys.modules, "widgets.registry", None)


@pytest.mark.parametrize("how", ["show", "ipython"])
def test_without_ui_a_result_shows_escaped_tables(no_ui, shown, how):
    result = scores()
    display_mod.show(result) if how == "show" else result._ipython_display_()
    assert len(shown) == 1 and isinstance(shown[0], HTML)
    page = shown[0].data
    assert "<table" in page and "0.25" in page and page.count("<table") == 2  # both DataFrame fields
    assert "<script" not in page and "&lt;script&gt;" in page  # cells and column names escaped


def test_without_ui_a_run_shows_its_tables(no_ui, shown):
    history = pd.DataFrame({"epoch": [0, 1], "loss": [0.9, 0.7]})
    run = Run("r", {"modalities": ["a"]}, history, pd.DataFrame({"split": [PAYLOAD]}), {})
    run._ipython_display_()
    page = shown[0].data
    assert "<h4>history</h4>" in page and "0.7" in page and "&lt;script&gt;" in page and "<script" not in page


def test_long_tables_are_cut(no_ui, shown):
    display_mod.show(Scores(pd.DataFrame({"v": range(500)}), pd.DataFrame()))
    assert f"first {display_mod.MAX_ROWS} of 500 rows" in shown[0].data


def test_registered_panel_is_shown_for_subclasses(monkeypatch, shown):
    from widgets import registry

    monkeypatch.setitem(registry.PANELS, registry.class_key(Scores), lambda obj: ("panel of", type(obj).__name__))
    display_mod.show(SubScores(pd.DataFrame({"x": [1]}), pd.DataFrame()))
    assert shown == [("panel of", "SubScores")]  # found along the MRO


def test_missing_panel_module_falls_back_to_tables(monkeypatch, shown):
    from widgets import registry

    monkeypatch.setitem(registry.PANELS, registry.class_key(Scores), "no_such_ui_module_xyz:panel")
    display_mod.show(scores())
    assert isinstance(shown[0], HTML) and "&lt;script&gt;" in shown[0].data


def test_any_result_gets_the_generic_panel(shown):
    from widgets.panels.base import ResultPanel

    display_mod.show(scores())
    assert isinstance(shown[0], ResultPanel)


def test_registry_keys():
    from widgets import registry

    assert registry.class_key("workbench" + ".gap:GapResult") == "workbench.analyses.gap:GapResult"
    with pytest.raises(ValueError, match="expected a class or 'module:ClassName'"):
        registry.register_figures("GapResult", "m:f")
    with pytest.raises(ValueError, match="expected a callable or 'module:function'"):
        registry.register_panel(Scores, "widgets.panels.base")


def test_core_reaches_the_ui_only_through_display():
    """Only display (lazily) and the serve/report commands name ``widgets`` in workbench/."""
    from pathlib import Path

    import workbench

    root = Path(workbench.__file__).parent
    allowed = {"display.py", "cli/serve.py", "cli/report.py"}
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if str(p.relative_to(root)) not in allowed
                 and any(line.lstrip().startswith(("from widgets", "import widgets")) for line in p.read_text().splitlines())]
    assert offenders == []


def test_every_registered_builder_and_class_resolves():
    import importlib

    from widgets import registry

    for key, target in [*registry.PANELS.items(), *registry.RESULT_FIGURES.items()]:
        module, _, name = key.partition(":")
        assert isinstance(getattr(importlib.import_module(module), name), type), key
        assert callable(registry.resolve(target)), target


def test_built_in_analyses_find_their_figure_modules_by_name():
    import importlib
    import inspect
    import pkgutil

    import workbench.analyses
    from widgets import registry
    from workbench.store.results import Result

    found = {}
    for info in pkgutil.iter_modules(workbench.analyses.__path__):
        module = importlib.import_module(f"workbench.analyses.{info.name}")
        has_figures = importlib.util.find_spec(f"widgets.figures.{info.name}") is not None
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and issubclass(cls, Result):
                target = registry.figures_target(cls)
                if has_figures:
                    assert target == f"widgets.figures.{info.name}:report_figures", cls
                    assert callable(registry.resolve(target))
                found[cls.__name__] = target
    assert {"GapResult", "ShapleyResult", "FairnessResult", "Comparison"} <= {k for k, v in found.items() if v}
