"""The folder tree is the architecture: the import graph between the project's parts is acyclic
and the dependency rules of DESIGN.md ("Layout"; pyproject.toml ``[tool.importlinter]``) hold.

The graph is grimp's (the library import-linter uses), which records imports inside functions
too, so a lazy import does not hide an edge.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

grimp = pytest.importorskip("grimp")

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("workbench", "widgets", "data_catalog")


def part_of(module: str) -> str | None:
    """The part a module belongs to: ``workbench.X`` for the core's subpackages and modules,
    the package itself for ``widgets`` and ``data_catalog``; None for ``workbench/__init__``
    (the public facade, which re-exports every part by design)."""
    pieces = module.split(".")
    if pieces[0] != "workbench":
        return pieces[0]
    return ".".join(pieces[:2]) if len(pieces) > 1 else None


def part_graph() -> dict[str, set[str]]:
    """Edges between parts. A module that imports nothing of the project (``training.config``,
    ``store.atomic``) is a part of its own: nothing can lead back from it, so importing it
    does not tie its package to the importer (``strategies -> training.config`` is allowed
    while ``training -> strategies``)."""
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    imports = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}

    def node(module: str) -> str | None:
        return module if not imports[module] and part_of(module) is not None else part_of(module)

    edges: dict[str, set[str]] = {}
    for module, targets in imports.items():
        src = node(module)
        if src is None:
            continue
        edges.setdefault(src, set())
        for target in targets:
            dst = node(target)
            if dst is not None and dst != src:
                edges[src].add(dst)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_cycle_finder_finds_a_cycle_and_only_that():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_parts_of_the_project_import_each_other_without_cycles():
    edges = part_graph()
    assert {"workbench.models", "workbench.strategies", "workbench.training", "widgets"} <= set(edges)
    found = cycles(edges)
    detail = "; ".join(
        " <-> ".join(c) + " (" + ", ".join(f"{a}->{b}" for a in c for b in sorted(edges[a] & set(c))) + ")"
        for c in found
    )
    assert not found, f"import cycles between parts: {detail}"


def test_the_dependency_contracts_hold():
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.skip("lint-imports (import-linter, in the [test] extra) is not installed")
    res = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env={"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
                              "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
