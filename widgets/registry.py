"""Which figures and which panel show a result: registered by result class, looked up along the MRO.

Keys are ``"module:ClassName"`` strings (a class may be passed too), so registering a builder
imports neither the analysis module nor the builder: both are imported only when a result of that
class is drawn. Values are ``"module:function"`` strings or callables. A lookup walks the result's
class hierarchy, so a subclass of ``GapResult`` gets the gap figures, and any :class:`Result`
without its own entry gets the generic :class:`widgets.panels.base.ResultPanel` (its registered
figures, else its table). Keys that name a module from before the 0.2 layout
(:data:`workbench.store.results.MOVED_MODULES`) are mapped to its new name.

A built-in analysis needs no registration line: a result class of ``workbench.analyses.NAME``
gets the figures of ``widgets.figures.NAME:report_figures`` when that module exists
(:func:`conventional_figures`), so adding one is its analysis module plus its figure module.

An analysis outside this package registers itself when its module is imported::

    from widgets.registry import register_figures, register_panel
    register_figures("my_lab.analysis:MyResult", "my_lab.figures:report_figures")

Processes that draw saved runs without running your code first (``workbench report``, the served
dashboard) import the modules named in ``$WORKBENCH_EXTENSIONS`` (comma-separated) and in the
``workbench.extensions`` entry-point group (:func:`load_extensions`).

Examples
--------
>>> from workbench.analyses.gap import GapResult
>>> class MyGap(GapResult):
...     pass
>>> figures_target(MyGap)
'widgets.figures.gap:report_figures'
>>> class_key(GapResult)
'workbench.analyses.gap:GapResult'
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from workbench.store.results import MOVED_MODULES

Target = str | Callable[..., Any]

# "module:ClassName" -> "module:function(result) -> list[go.Figure]" (or a callable)
RESULT_FIGURES: dict[str, Target] = {}
# "module:ClassName" -> "module:function(obj) -> displayable" (or a callable)
PANELS: dict[str, Target] = {}

BUILTIN_ANALYSES = "workbench.analyses."
EXTENSIONS_ENV = "WORKBENCH_EXTENSIONS"
EXTENSIONS_GROUP = "workbench.extensions"
_loaded_extensions: set[str] = set()


def class_key(result_cls: type | str) -> str:
    """The registry key ``"module:ClassName"`` of a class (or of such a string, old module names mapped).

    Examples
    --------
    >>> class_key("workbench" + ".gap:GapResult")
    'workbench.analyses.gap:GapResult'
    """
    if isinstance(result_cls, type):
        return f"{result_cls.__module__}:{result_cls.__qualname__}"
    module, sep, name = str(result_cls).partition(":")
    if not sep or not module or not name:
        raise ValueError(f"result class {result_cls!r}: expected a class or 'module:ClassName'")
    return f"{MOVED_MODULES.get(module, module)}:{name}"


def _check_target(target: Target) -> Target:
    if callable(target):
        return target
    module, sep, name = str(target).partition(":")
    if not sep or not module or not name:
        raise ValueError(f"builder {target!r}: expected a callable or 'module:function'")
    return str(target)


def register_figures(result_cls: type | str, builder: Target) -> None:
    """Register ``builder(result) -> list[go.Figure]`` as the figures of ``result_cls`` and its subclasses.

    Examples
    --------
    >>> register_figures("my_lab.analysis:MyResult", "my_lab.figures:report_figures")
    >>> RESULT_FIGURES.pop("my_lab.analysis:MyResult")
    'my_lab.figures:report_figures'
    """
    RESULT_FIGURES[class_key(result_cls)] = _check_target(builder)


def register_panel(result_cls: type | str, builder: Target) -> None:
    """Register ``builder(obj) -> widget`` as what :func:`workbench.display.show` displays for ``result_cls``.

    Examples
    --------
    >>> register_panel("my_lab.analysis:MyResult", "my_lab.panels:my_panel")
    >>> PANELS.pop("my_lab.analysis:MyResult")
    'my_lab.panels:my_panel'
    """
    PANELS[class_key(result_cls)] = _check_target(builder)


def lookup(table: dict[str, Target], cls: type) -> Target | None:
    """The entry of ``cls`` or of its nearest registered base class in ``table`` (``None`` when none)."""
    for base in cls.__mro__:
        target = table.get(class_key(base))
        if target is not None:
            return target
    return None


def resolve(target: Target) -> Callable[..., Any]:
    """The function a ``"module:function"`` target names (imported now), or the callable itself."""
    if callable(target):
        return target
    module, _, name = target.partition(":")
    fn = getattr(importlib.import_module(module), name, None)
    if not callable(fn):
        raise ImportError(f"builder {target!r}: module {module!r} has no function {name!r}")
    return fn


def conventional_figures(cls: type) -> str | None:
    """``widgets.figures.NAME:report_figures`` for a result class of ``workbench.analyses.NAME``, when
    that figure module exists: a built-in analysis is its module plus its figure module, no
    registration line."""
    module = cls.__module__
    if not module.startswith(BUILTIN_ANALYSES):
        return None
    name = f"widgets.figures.{module.rpartition('.')[2]}"
    try:
        found = importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        found = False
    return f"{name}:report_figures" if found else None


def figures_target(cls: type) -> Target | None:
    """The figure builder of ``cls``: the nearest class in its MRO that is registered
    (:func:`register_figures`) or that is a built-in analysis with a figure module of its name
    (:func:`conventional_figures`); ``None`` when none is."""
    for base in cls.__mro__:
        target = RESULT_FIGURES.get(class_key(base)) or conventional_figures(base)
        if target is not None:
            return target
    return None


def figures_builder(result: object) -> Callable[..., Any] | None:
    """The figure builder for ``result``'s class (see :func:`figures_target`), or ``None``."""
    target = figures_target(type(result))
    return None if target is None else resolve(target)


def panel_builder(obj: object) -> Callable[..., Any] | None:
    """The registered panel builder for ``obj``'s class (MRO walk), or ``None``."""
    target = lookup(PANELS, type(obj))
    return None if target is None else resolve(target)


def load_extensions() -> list[str]:
    """Import the extension modules named in ``$WORKBENCH_EXTENSIONS`` and the ``workbench.extensions``
    entry points (each once); returns the modules imported by this call.

    An extension module defines its result classes and registers their figures and panels at
    import, so a process that only reads run folders (a report kernel, the dashboard) can load and
    draw them.
    """
    names = [n.strip() for n in os.environ.get(EXTENSIONS_ENV, "").split(",") if n.strip()]
    names += [ep.value.partition(":")[0] for ep in entry_points(group=EXTENSIONS_GROUP)]
    imported = []
    for name in dict.fromkeys(names):
        if name in _loaded_extensions:
            continue
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ImportError(f"workbench extension {name!r} (from ${EXTENSIONS_ENV} or entry point group "
                              f"{EXTENSIONS_GROUP!r}) cannot be imported: {exc}") from exc
        _loaded_extensions.add(name)
        imported.append(name)
    return imported


# -- the built-in analyses ---------------------------------------------------------------------------
# figures: by convention (workbench.analyses.NAME -> widgets.figures.NAME:report_figures, see
# conventional_figures); panels: results without a panel of their own get the generic ResultPanel
register_figures("workbench.analyses.theory_lab:TheoryLabResult", "widgets.figures.theory:report_figures")
register_figures("workbench.jobs.tune:TuneResult", "widgets.figures.tune:report_figures")  # a job's result

register_panel("workbench.store.results:Result", "widgets.panels.base:ResultPanel")
register_panel("workbench.store.runs:Run", "widgets.panels.base:RunPanel")
register_panel("workbench.analyses.gap:GapResult", "widgets.panels.gap:gap_panel")
register_panel("workbench.analyses.shapley:ShapleyResult", "widgets.panels.shapley:shapley_panel")
register_panel("workbench.analyses.fairness:FairnessResult", "widgets.panels.fairness:fairness_panel")
register_panel("workbench.analyses.compare:Comparison", "widgets.panels.compare:comparison_panel")
register_panel("workbench.analyses.vibraverse_card:ObjectCardResult", "widgets.panels.vibraverse_card:object_card_panel")
register_panel("workbench.analyses.recommendation:RecommendationResult",
               "widgets.panels.recommendation:recommendation_panel")
