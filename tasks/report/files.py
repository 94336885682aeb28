"""Reading and writing files in folders we do not trust (datasets, results folders).

Reads never follow a link and never open a FIFO or a device, and stop at a size bound; writes
go to a fresh temporary name that is renamed over the target, so a link planted at the target
is replaced, never written through.
"""

from __future__ import annotations

import os
import stat
import uuid
from pathlib import Path
from typing import BinaryIO

_NO_FOLLOW = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


def open_regular(path: Path, limit: int) -> BinaryIO | None:
    """A binary handle on a regular file of at most `limit` bytes, or None (missing, a link, a
    FIFO, a device, a folder, or too large)."""
    try:
        fd = os.open(path, _NO_FOLLOW)
    except OSError:
        return None
    handle = os.fdopen(fd, "rb")
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
        handle.close()
        return None
    return handle


def read_regular(path: Path, limit: int) -> bytes | None:
    """The bytes of a regular file of at most `limit` bytes, else None.

    >>> read_regular(Path("/nonexistent"), 10) is None
    True
    """
    handle = open_regular(path, limit)
    if handle is None:
        return None
    with handle:
        return handle.read(limit + 1)[:limit]


def write_replacing(path: Path, data: bytes) -> Path:
    """Write `data` to `path` through a temporary file and a rename; returns `path`."""
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path
