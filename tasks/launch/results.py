"""The results folder (-r): stable per run, marked with its run id, owned by the job's user,
and written by a container we do not trust.

TAO resumes from any `.ckzip` it finds in -r. That is what a retry of the same run wants,
and exactly what a *new* run must not do silently: a marker file names the run that owns
the folder, and a different run is refused unless it asks to resume.

Whatever the container leaves there may be a symlink (to /etc/crontab), a FIFO (that blocks a
reader forever) or a device: taoflow runs as root on GPU hosts, so every file it reads or
appends to in -r is opened without following links and without blocking, and must turn out to
be a regular file.
"""

from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tasks.errors import LaunchError
from tasks.files import FILE, SPECIAL, SYMLINK, NotRegular, open_regular, path_kind, write_atomic

RUN_MARKER = ".taoflow-run-id"
_CHECKPOINT = re.compile(r"^model\.epoch-(\d+)\.ckzip$")


@dataclass(frozen=True)
class Chunk:
    data: bytes
    #: The file is shorter than the offset asked for: it was truncated or replaced.
    truncated: bool = False


def _open_regular(path: Path, flags: int) -> int:
    """An fd on `path` itself, never a link's target, never a FIFO or device (never blocking on one)."""
    try:
        fd, _ = open_regular(str(path), flags)
    except NotRegular as exc:
        if exc.kind == SYMLINK:
            raise LaunchError(
                f"{path.name} in the results folder is a symbolic link; taoflow does not follow links the "
                "job left behind",
                where=str(path),
                fix="remove the link; a trainer must write regular files into its results folder",
            ) from None
        raise _not_regular(path) from None
    except OSError as exc:
        # A FIFO with no reader refuses a non-blocking open for writing (ENXIO) before fstat can tell.
        if exc.errno == errno.ENXIO or path_kind(str(path)) == SPECIAL:
            raise _not_regular(path) from None
        raise
    return fd


def _not_regular(path: Path) -> LaunchError:
    return LaunchError(
        f"{path.name} in the results folder is not a regular file (a FIFO, device or folder)",
        where=str(path),
        fix="remove it; a trainer must write regular files into its results folder",
    )


def read_untrusted(path: Path, *, offset: int = 0, limit: int = 1 << 20) -> Chunk | None:
    """Up to `limit` bytes of a regular file from `offset`; None when it does not exist (yet).

    >>> read_untrusted(Path("/nonexistent/status.json")) is None
    True
    """
    try:
        fd = _open_regular(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size < offset:
            return Chunk(handle.read(max(limit, 0)), truncated=True)
        handle.seek(offset)
        return Chunk(handle.read(max(limit, 0)))


def append_untrusted(path: Path) -> IO[str]:
    """A text handle appending to `path` in a container-written folder, created if absent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _open_regular(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    return os.fdopen(fd, "a", encoding="utf-8")


def regular_file(path: Path) -> bool:
    """True for a regular file at `path` itself (a link to one does not count)."""
    return path_kind(str(path)) == FILE


def checkpoints(results: Path) -> list[Path]:
    """The `model.epoch-<E>.ckzip` files (regular files only), oldest epoch first."""
    if not results.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in results.iterdir() if (m := _CHECKPOINT.match(p.name)) and regular_file(p)]
    return [p for _, p in sorted(found)]


def checkpoint_epoch(path: Path) -> int:
    """The epoch in a checkpoint's name: the epochs completed when it was saved."""
    match = _CHECKPOINT.match(path.name)
    if match is None:
        raise ValueError(f"not a checkpoint name: {path.name}")
    return int(match.group(1))


def newest_checkpoint_epoch(results: Path) -> int | None:
    """Epochs completed according to the newest checkpoint, None without one."""
    found = checkpoints(results)
    return checkpoint_epoch(found[-1]) if found else None


def prepare_results(results: Path, *, run_id: str, resume: bool = False, user: str | None = None) -> None:
    """Create the folder, refuse another run's checkpoints, mark it ours, hand it to `user`."""
    results.mkdir(parents=True, exist_ok=True)
    marker = read_untrusted(results / RUN_MARKER, limit=256)
    owner = marker.data.decode("utf-8", "replace").strip() if marker else None
    existing = checkpoints(results)
    if existing and owner != run_id and not resume:
        raise LaunchError(
            f"the results folder already holds {len(existing)} checkpoint(s) "
            f"(newest {existing[-1].name}) from {'run ' + owner if owner else 'an unknown run'}",
            where=str(results),
            fix="use an empty results folder (a new model_subfolder) for a new experiment, "
            "or set resume=True to continue training from those checkpoints",
        )
    write_atomic(results / RUN_MARKER, run_id + "\n")
    _hand_over(results, user)


def _hand_over(results: Path, user: str | None) -> None:
    # Only root can (and needs to) give the folder to the container's user; others own it already.
    if os.geteuid() != 0 or not user:
        return
    uid_text, _, gid_text = user.partition(":")
    if not uid_text.isdigit():
        return  # a user name: the engine resolves it inside the image, we cannot here
    uid, gid = int(uid_text), int(gid_text) if gid_text.isdigit() else -1
    for folder, dirs, files in os.walk(results):  # never into a linked folder
        for name in [*dirs, *files]:
            os.chown(os.path.join(folder, name), uid, gid, follow_symlinks=False)
    os.chown(results, uid, gid, follow_symlinks=False)
