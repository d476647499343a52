"""``workbench serve``: the Panel dashboard over a run folder (a thin wrapper over ``pn.serve``).

    workbench serve [--runs-dir DIR] [--host 127.0.0.1] [--port 5006] [--plotly cartesian|full]
                    [--num-threads 8] [--cache-size 32]

The dashboard lives in :mod:`widgets.dashboard`; it is imported only when the command runs,
so the core never imports UI code.
"""

from __future__ import annotations

import argparse


def cmd_serve(args: argparse.Namespace) -> int:
    from widgets.dashboard import check_port, serve

    check_port(args.host, args.port)  # a busy port: one line, before the banner says it listens
    print(
        f"workbench dashboard on http://{args.host}:{args.port}/ (runs folder: {args.runs_dir or 'default'}); "
        "Ctrl-C stops it",
        flush=True,
    )
    serve(
        args.runs_dir,
        host=args.host,
        port=args.port,
        show=args.show,
        plotly=args.plotly,
        num_threads=args.num_threads,
        cache_size=args.cache_size,
    )
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("serve", help="serve the interactive dashboard over a run folder")
    # SUPPRESS: do not overwrite a --runs-dir given before the subcommand
    p.add_argument("--runs-dir", default=argparse.SUPPRESS, help="run store root (default ./runs)")
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default loopback only)"
    )
    p.add_argument("--port", type=int, default=5006)
    p.add_argument("--show", action="store_true", help="open a browser tab")
    p.add_argument(
        "--plotly",
        choices=["cartesian", "full"],
        default="cartesian",
        help="plotly.js build the pages load: the light cartesian one (default, faster first page) "
        "or the full one, for figures with other trace types (3-D, maps, tables)",
    )
    p.add_argument(
        "--num-threads",
        type=int,
        default=8,
        help="threads that load runs and draw pages, so concurrent visitors are served concurrently",
    )
    p.add_argument(
        "--cache-size",
        type=int,
        default=32,
        help="loaded runs kept in memory (LRU, shared by sessions)",
    )
    p.set_defaults(func=cmd_serve)
