"""``workbench datasets [list | add PATH [--name NAME]]``: list the catalog, or register a data folder."""

from __future__ import annotations

import argparse

from workbench.cli.common import print_table


def cmd_datasets(args: argparse.Namespace) -> int:
    from data_catalog.folder import register_folder
    from data_catalog.registry import catalog_table, user_catalog_dir

    if args.action == "add":
        if not args.path:
            raise SystemExit("workbench datasets add PATH [--name NAME]: PATH is required")
        target = register_folder(args.path, catalog_dir=user_catalog_dir(), name=args.name)
        print(f"registered {args.path} as {target.stem} ({target})")
        return 0
    print_table(catalog_table())
    return 0


def register(subparsers) -> None:
    """Add ``datasets`` to the ``workbench`` CLI."""
    p = subparsers.add_parser("datasets", help="list the dataset catalog, or add a data folder")
    p.add_argument("action", nargs="?", choices=["list", "add"], default="list")
    p.add_argument("path", nargs="?")
    p.add_argument("--name")
    p.set_defaults(func=cmd_datasets)
