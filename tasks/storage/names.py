"""The name guard: a blob name may only ever become a path *inside* the target directory.

Blob names are arbitrary strings chosen by whoever wrote the container. Before one becomes a
local path we refuse anything that could climb out (``..``, absolute, drive letters), that a
filesystem would treat specially (backslash, NUL, control characters) or that is too long.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

MAX_NAME_BYTES = 1024  # Azure's own limit for a blob name
MAX_SEGMENT_BYTES = 255  # ext4, xfs, NTFS
_DRIVE = re.compile(r"^[A-Za-z]:")
#: Unicode category Cc is exactly these 65 code points; a regex checks a name ~20x faster than
#: asking unicodedata per character (it runs for every blob of every sync, re-syncs included).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def name_problem(relative: str) -> str | None:
    """Why `relative` (a blob name below the synced prefix) is unsafe as a local path, or None."""
    if not relative:
        return "it is empty"
    if len(relative.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return f"it is longer than {MAX_NAME_BYTES} bytes"
    if "\x00" in relative:
        return "it contains a NUL character"
    if _CONTROL.search(relative):
        return "it contains a control character"
    if "\\" in relative:
        return "it contains a backslash, which is a path separator on Windows"
    if relative.startswith("/") or _DRIVE.match(relative):
        return "it is an absolute path"
    for segment in relative.split("/"):
        if segment in {"", ".", ".."}:
            return f"it has an empty, '.' or '..' path segment ({relative!r})"
        if len(segment.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES:
            return f"a path segment is longer than {MAX_SEGMENT_BYTES} bytes"
    return None


def safe_relative(relative: str) -> PurePosixPath:
    """`relative` as a path, assuming `name_problem` returned None for it."""
    return PurePosixPath(*relative.split("/"))


def printable(name: str) -> str:
    """A blob name made safe to print (control characters escaped, length capped)."""
    text = name.encode("unicode_escape", "backslashreplace").decode("ascii")
    return text if len(text) <= 160 else text[:150] + "...(long)"
