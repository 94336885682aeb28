"""TFRecord shards on the local staging side: which files a spec glob picks, and how many frames they hold.

A TFRecord file is a run of records framed as <uint64 length><masked crc32c of length><data><crc>;
checking the first frame's CRC tells a shard from anything else (the converter's *_warning.json),
and walking the frames counts the images without decoding them.

The spec's `tfrecords_path` is a glob TAO hands to `glob.glob`; it may reach into sub-folders of the
staged location (`<reference>/kitti_trainval/*`, the layout of NVIDIA's notebooks). `shard_glob`
matches it the same way (`*` skips dot-files) without following links.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import re
import struct

from tasks.files import DIR, FILE, SYMLINK, open_regular, scan

_CRC32C_POLY = 0x82F63B78
_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ _CRC32C_POLY if _c & 1 else _c >> 1
    _TABLE.append(_c)


def _crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> int:
    crc = _crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    """TFRecord's masked CRC32C (exposed so tests can write real shards)."""
    return _masked_crc(data)


class NotATFRecord(Exception):
    pass


def count_records(path: str) -> int:
    """Number of records in a TFRecord file; NotATFRecord when the framing does not hold."""
    fd, size = open_regular(path)
    count, offset = 0, 0
    with os.fdopen(fd, "rb") as fh:
        while offset < size:
            header = fh.read(12)
            if len(header) < 12:
                raise NotATFRecord(f"too short for a TFRecord frame header at byte {offset}")
            length, crc = struct.unpack("<QI", header)
            if count == 0 and crc != _masked_crc(header[:8]):
                raise NotATFRecord("the first record's length checksum does not match (not TFRecord data)")
            offset += 12 + length + 4
            if offset > size:
                raise NotATFRecord(f"record {count} runs past the end of the file")
            fh.seek(offset)
            count += 1
    return count


def shard_glob(directory: str, spec_glob: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Files the spec's `tfrecords_path` glob picks in the staged `directory`, and the links or special
    files it would pick too (never followed; (path, kind)).

    A rebased glob (the flow's host facts) lies under `directory` and is matched from there. A glob
    for another machine (`taoflow validate --tfrecords DIR` with a container path) is anchored at the
    longest tail whose folders exist under `directory`, so both DIR=<kitti_trainval> and DIR=<its
    parent> find `.../kitti_trainval/*`.

    >>> shard_glob("/nonexistent", "/data/x/*")
    ([], [])
    """
    norm_dir = posixpath.normpath(directory)
    norm_glob = posixpath.normpath(spec_glob.rstrip("/") or "*")
    if norm_glob.startswith(norm_dir.rstrip("/") + "/"):
        return _match(directory, norm_glob[len(norm_dir.rstrip("/")) + 1:].split("/"))
    parts = [p for p in norm_glob.split("/") if p] or ["*"]
    for k in range(len(parts), 1, -1):
        if _folders(directory, parts[-k:-1]):
            return _match(directory, parts[-k:])
    return _match(directory, parts[-1:])


def _folders(directory: str, components: list[str]) -> list[str]:
    """The real folders (no links) under `directory` that the folder patterns `components` reach."""
    folders = [directory]
    for pattern in components:
        folders = [os.path.join(f, name) for f in folders for name, kind in _scan(f)
                   if kind == DIR and fnmatch.fnmatchcase(name, pattern) and _visible(name, pattern)]
    return folders


def _scan(folder: str) -> list[tuple[str, str]]:
    try:
        return scan(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _visible(name: str, pattern: str) -> bool:
    return not name.startswith(".") or pattern.startswith(".")  # like glob.glob, which TAO uses


def _match(directory: str, components: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    if any(c == ".." for c in components):
        return [], []  # never climb out of the staged folder
    folders, files, blocked = [directory], [], []
    for depth, pattern in enumerate(components):
        last = depth == len(components) - 1
        found = []
        for folder in folders:
            for name, kind in _scan(folder):
                if not fnmatch.fnmatchcase(name, pattern) or not _visible(name, pattern):
                    continue
                path = os.path.join(folder, name)
                if last and kind == FILE:
                    files.append(path)
                elif kind == DIR:
                    found.append(path)
                elif kind != FILE and (last or kind == SYMLINK):
                    blocked.append((path, kind))
        folders = found
    return sorted(files), sorted(blocked)


def any_shard(directory: str, max_depth: int = 4) -> bool:
    """Whether `directory` (or a real sub-folder, `max_depth` deep) holds a visible regular file that is
    not a converter's `*_warning.json`: TFRecords are there, wherever the spec's glob points.

    >>> any_shard("/nonexistent")
    False
    """
    folders = [directory]
    for _ in range(max_depth + 1):
        nested = []
        for folder in folders:
            for name, kind in _scan(folder):
                if name.startswith("."):
                    continue  # taoflow's own .taoflow-dataset.json, and what glob's `*` skips
                if kind == FILE and not name.endswith("_warning.json"):
                    return True
                if kind == DIR:
                    nested.append(os.path.join(folder, name))
        folders = nested
    return False


def fold_of(path: str) -> int | None:
    """The fold number in a dataset_convert shard name (`-fold-NNN-of-`)."""
    match = re.search(r"fold-(\d{3})-of-", os.path.basename(path))
    return int(match.group(1)) if match else None
