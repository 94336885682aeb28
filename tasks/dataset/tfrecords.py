"""TFRecord shards on the local staging side: which files a spec glob picks, and how many frames they hold.

A TFRecord file is a run of records framed as <uint64 length><masked crc32c of length><data><crc>;
checking the first frame's CRC tells a shard from anything else (the converter's *_warning.json),
and walking the frames counts the images without decoding them.
"""

from __future__ import annotations

import fnmatch
import os
import re
import struct

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
    size = os.path.getsize(path)
    count, offset = 0, 0
    with open(path, "rb") as fh:
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


def glob_local(directory: str, spec_glob: str) -> list[str]:
    """Files of `directory` matched by the last component of the spec's `tfrecords_path` glob."""
    pattern = os.path.basename(spec_glob.rstrip("/")) or "*"
    hidden_ok = pattern.startswith(".")  # like glob.glob, which TAO uses: `*` skips dot-files
    with os.scandir(directory) as entries:
        return sorted(e.path for e in entries if e.is_file() and fnmatch.fnmatchcase(e.name, pattern)
                      and (hidden_ok or not e.name.startswith(".")))


def fold_of(path: str) -> int | None:
    """The fold number in a dataset_convert shard name (`-fold-NNN-of-`)."""
    match = re.search(r"fold-(\d{3})-of-", os.path.basename(path))
    return int(match.group(1)) if match else None
