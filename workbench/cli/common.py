"""Helpers shared by the command modules: tables and ``KEY=VALUE`` arguments.

Example
-------
>>> dict(parse_kv(["alpha=0.5", "ge=true", "scale=lr"]))
{'alpha': 0.5, 'ge': True, 'scale': 'lr'}
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import pandas as pd


def print_table(frame: pd.DataFrame) -> None:
    """Print a DataFrame without its index (``(none)`` when empty)."""
    with pd.option_context("display.max_colwidth", 60, "display.width", 200):
        print(frame.to_string(index=False) if len(frame) else "(none)")


def parse_kv(pairs: Iterable[str], flag: str = "--param") -> Iterator[tuple[str, Any]]:
    """``KEY=VALUE`` strings as ``(key, value)``: values are JSON (numbers, booleans, lists; never
    evaluated as code), else strings; ``inf``/``nan`` become floats so that the config's
    finiteness check names the parameter. A malformed pair is a one-line ``ValueError`` naming ``flag``."""
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"{flag} {pair!r}: expected KEY=VALUE with KEY a parameter name")
        try:
            yield key, json.loads(value)
        except json.JSONDecodeError:
            yield key, float(value) if value.strip().lower().lstrip("+-") in ("inf", "infinity", "nan") else value
