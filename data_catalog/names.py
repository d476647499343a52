"""The one check for every name that becomes part of a path: dataset names, run ids, result names.

A name is one path component of letters, digits, ``_``, ``-`` and ``.``, starting with a letter or
digit, at most :data:`MAX_LENGTH` characters: no separator, no ``..``, no leading dot (hidden
files are where temp files live and what listings skip), nothing a shell or an HTML page would
read as syntax. It imports nothing of the project, so the catalog, the card schema and the run
store can all use it.

Examples
--------
>>> safe_name("dataset", "my-study_2.v1")
'my-study_2.v1'
>>> safe_name("dataset", "../../escaped")
Traceback (most recent call last):
...
data_catalog.names.UnsafeNameError: dataset name '../../escaped' is not allowed: use letters, digits, '_', '-' and '.', starting with a letter or digit (at most 128 characters)
"""

from __future__ import annotations

import re

MAX_LENGTH = 128
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
_NAME = re.compile(NAME_PATTERN)


class UnsafeNameError(ValueError):
    """A name that would become a path is not allowed; the message names its kind and value."""


def is_safe_name(name: object) -> bool:
    """Whether ``name`` passes :func:`safe_name`."""
    return (isinstance(name, str) and len(name) <= MAX_LENGTH and _NAME.fullmatch(name) is not None
            and ".." not in name)


def safe_name(kind: str, name: object) -> str:
    """``name`` unchanged if it is safe as one path component, else a one-line :class:`UnsafeNameError`.

    Parameters
    ----------
    kind : str
        What the name is (``"dataset"``, ``"run id"``, ``"result"``); it starts the message.
    name : str
        The name to check.
    """
    if not is_safe_name(name):
        raise UnsafeNameError(f"{kind} name {name!r} is not allowed: use letters, digits, '_', '-' and '.', "
                         f"starting with a letter or digit (at most {MAX_LENGTH} characters)")
    return name  # type: ignore[return-value]
