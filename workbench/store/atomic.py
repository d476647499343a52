"""Atomic file writes: the one place where the workbench writes a file it must never half-write.

Every writer serialises its object to bytes in memory first and then calls
:func:`atomic_write_bytes`, which writes a uniquely named temp file in the target's folder
(``tempfile.mkstemp``: two processes writing the same target never share a temp name) and
renames it over the target (``os.replace``, atomic on POSIX). On any error the temp file is
removed and an :class:`AtomicWriteError` names the path and the reason; the target keeps its
previous content.

Serialising to memory first is deliberate: ``torch.save`` straight to a file turns a full disk
into ``RuntimeError: [enforce fail at inline_container.cc:672]`` with a partial file left
behind, and ``DataFrame.to_parquet`` into an arrow error. Written from memory, every disk
error is an ``OSError`` of one ``write`` call. The objects written here (run configs,
per-epoch checkpoints of small models, result tables) fit in memory many times over.

No ``fsync``: the promise is "never half-written after a crash of the process" (kill -9, a
dead Dask worker), not durability across a power cut, and an fsync per epoch would cost more
than the trainer's whole overhead budget on small models.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


class AtomicWriteError(OSError, RuntimeError):
    """Writing ``path`` failed (full disk, read-only folder, ...); nothing partial was left.

    An ``OSError`` (so sweeps retry it as an environment fault, and ``errno`` tells ENOSPC
    from EACCES) and a ``RuntimeError`` (so the CLI reports it as one line).
    """


def _write(fh, data: bytes) -> None:
    """The one raw write (a seam for fault-injection tests)."""
    fh.write(data)


def atomic_write_bytes(path: str | Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` via a unique temp file in the same folder and an atomic rename.

    Raises
    ------
    AtomicWriteError
        Naming ``path`` and the reason; no temp file remains and ``path`` is unchanged.
    """
    path = Path(path)
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            _write(fh, data)
        os.chmod(tmp, mode)  # mkstemp makes 0600; run folders are meant to be shared
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        reason = exc.strerror or str(exc)
        raise AtomicWriteError(exc.errno, f"cannot write {path}: {reason}") from exc
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays and tuples turned into JSON types (keys as strings)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """JSON with sorted keys; a value JSON cannot hold raises ``TypeError`` naming ``path``."""
    try:
        text = json.dumps(jsonable(obj), indent=2, sort_keys=True, allow_nan=True)
    except TypeError as exc:
        raise TypeError(f"cannot write {path}: {exc}") from None
    atomic_write_bytes(path, text.encode())


def atomic_write_frame(path: str | Path, frame: pd.DataFrame) -> None:
    """A DataFrame as Parquet (no index)."""
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    atomic_write_bytes(path, buf.getvalue())


def atomic_torch_save(path: str | Path, obj: Any) -> None:
    """``torch.save`` through memory, so a full disk is a clear ``OSError`` and never a partial file."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())
