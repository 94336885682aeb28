"""Dataset entries as they are, never followed: regular files are read, everything else is a finding.

Datasets come from users and taoflow may run as root. A symbolic link can point at any file of
the host, and a FIFO blocks whoever opens it, so the validator lists entries without following
them (`lstat` semantics) and opens files with `O_NOFOLLOW | O_NONBLOCK`, checking with `fstat` that
it really holds a regular file before it reads a byte. A file swapped for a link between the
listing and the read is refused the same way.
"""

from __future__ import annotations

import os
import stat

FILE, DIR, SYMLINK, SPECIAL = "file", "dir", "symlink", "special"
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


class NotRegular(OSError):
    """The path is a symbolic link or a special file; `kind` says which. Nothing was read from it."""

    def __init__(self, path: str, kind: str) -> None:
        super().__init__(f"{path} is a {describe(kind)}")
        self.kind = kind


def describe(kind: str) -> str:
    return {SYMLINK: "symbolic link", SPECIAL: "FIFO, socket or device", DIR: "folder"}.get(kind, "file")


def kind_of(entry: os.DirEntry) -> str:
    """What a directory entry is, without following it."""
    if entry.is_symlink():
        return SYMLINK
    if entry.is_dir(follow_symlinks=False):
        return DIR
    if entry.is_file(follow_symlinks=False):
        return FILE
    return SPECIAL


def path_kind(path: str) -> str | None:
    """What `path` is, without following it; None when it does not exist."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(mode):
        return SYMLINK
    if stat.S_ISDIR(mode):
        return DIR
    return FILE if stat.S_ISREG(mode) else SPECIAL


def scan(path: str) -> list[tuple[str, str]]:
    """(name, kind) of every entry of the folder `path`, links and special files included, unread."""
    with os.scandir(path) as entries:
        return [(e.name, kind_of(e)) for e in entries]


def open_regular(path: str) -> tuple[int, int]:
    """(read-only descriptor, size) of the regular file `path`; `NotRegular` for a link or special file.

    >>> import tempfile; d = tempfile.mkdtemp(); os.symlink("/etc/hostname", d + "/link")
    >>> try:
    ...     open_regular(d + "/link")
    ... except NotRegular as exc:
    ...     print(exc.kind)
    symlink
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        if os.path.islink(path):  # O_NOFOLLOW refuses a link with ELOOP (or EMLINK on some systems)
            raise NotRegular(path, SYMLINK) from None
        raise exc
    try:
        st = os.fstat(fd)
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise NotRegular(path, DIR if stat.S_ISDIR(st.st_mode) else SPECIAL)
    return fd, st.st_size
