"""``workbench figures SOURCE``: paper-ready static figures (PDF, SVG, PNG) of a run, a sweep or a result.

``SOURCE`` is a saved result folder (with ``result.json``), a run (id or folder: every analysis
result saved in it, one sub-folder each) or a sweep id (the comparison of its runs over seeds
in ``comparison/``, and every run's analysis results in ``RUN_ID/NAME/``). Each figure is
written with its caption beside it (``STEM.txt``) through :meth:`Result.save_figures`, which
finds the drawing code by name: this command imports no UI module.

Example
-------
>>> from workbench.cli import main
>>> main(["figures", "runs/<run id>", "--format", "pdf", "--out", "figs"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
from pathlib import Path

from workbench.store.results import FIGURE_FORMATS, NoFiguresError, Result, load_result


def _run_results(run_path: Path) -> list[tuple[str, Result]]:
    folder = run_path / "results"
    names = sorted(p.name for p in folder.iterdir() if (p / "result.json").exists()) if folder.is_dir() else []
    return [(name, load_result(folder / name)) for name in names]


def collect(source: str, runs_dir: str | None = None) -> list[tuple[Path, Result]]:
    """``(sub-folder, result)`` for every result ``source`` names (see the module docstring).

    Raises ``ValueError`` naming ``source`` when it is none of a result folder, a run or a sweep.
    """
    from workbench.store.runs import RunError, RunStore, load_run

    path = Path(source)
    if (path / "result.json").exists():
        return [(Path("."), load_result(path))]
    store = RunStore(runs_dir)
    if source.startswith("sweep-") and not store.path(source).exists() and not path.is_dir():
        from workbench.analyses.compare import compare
        from workbench.jobs.sweep import load_sweep

        sweep = load_sweep(source, runs_dir)
        found: list[tuple[Path, Result]] = [(Path("comparison"), compare([source], runs_dir=runs_dir))]
        for run_id in sweep.run_ids():
            found += [(Path(run_id) / name, res) for name, res in _run_results(store.path(run_id))]
        return found
    try:
        run = load_run(source, runs_dir)
    except RunError as exc:
        raise ValueError(f"SOURCE {source!r}: not a result folder, a run or a sweep id ({exc})") from None
    return [(Path(name), res) for name, res in _run_results(run.path)]


def cmd_figures(args: argparse.Namespace) -> int:
    if args.dpi <= 0:
        raise ValueError(f"--dpi: must be a positive integer, got {args.dpi}")
    out = Path(args.out)
    found = collect(args.source, args.runs_dir)
    written = 0
    for sub, result in found:
        try:
            paths = result.save_figures(out / sub, format=args.format, dpi=args.dpi)
        except NoFiguresError:
            print(f"skipped {sub}: {type(result).__name__} has no paper figures")
            continue
        figures = [p for p in paths if p.suffix == f".{args.format}"]
        written += len(figures)
        for p in figures:
            print(p)
    if not written:
        raise ValueError(f"SOURCE {args.source!r}: no result with paper figures found "
                         f"({len(found)} result(s) looked at)")
    print(f"{written} figure(s) written to {out} (captions beside them as .txt)")
    return 0


def register(subparsers) -> None:
    """Add ``figures`` to the ``workbench`` CLI."""
    p = subparsers.add_parser("figures", help="paper-ready static figures (pdf/svg/png) of a run, sweep or result")
    p.add_argument("source", metavar="RUN_OR_SWEEP", help="run id or folder, sweep id, or a saved result folder")
    p.add_argument("--format", choices=FIGURE_FORMATS, default="pdf")
    p.add_argument("--out", default="figures", help="output folder (default ./figures)")
    p.add_argument("--dpi", type=int, default=300, help="resolution of raster output (png)")
    p.add_argument("--runs-dir", default=argparse.SUPPRESS, help="run store root")
    p.set_defaults(func=cmd_figures)
