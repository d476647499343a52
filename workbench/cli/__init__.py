"""The ``workbench`` command: one module per command; :mod:`workbench.cli.main` parses and dispatches."""

from workbench.cli.main import main

__all__ = ["main"]
