"""Header-only image probes: format by magic bytes, size, channels, bit depth, end marker.

The validator must cover a dataset in seconds, so it reads the first block of a file (and a
few bytes of its tail) instead of decoding it. The probe reads through an `ImageSource` (a local
file, or a blob read by HTTP ranges: tasks.dataset.blob_reader), asking for more than the first
block only when the format needs it: a JPEG whose frame header (SOF) lies beyond it, e.g. after a
large EXIF block, is read from the next marker on, the EXIF itself skipped unread.
`decode_fully` is the slow, exact check behind `--deep`: it finds damage inside the compressed
data that no header shows.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from tasks.files import open_regular

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SOI = b"\xff\xd8\xff"
#: Enough for a typical JPEG's tables and SOF, and a PNG's IHDR, in one read of a local file.
HEAD_BYTES = 4096
#: JPEG writers may append padding after EOI; look for the marker this far from the end.
JPEG_TAIL_BYTES = 256
PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"

# SOF markers carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01, 0xD8}
# PNG colour type -> channels (palette decodes to RGB).
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}


@dataclass(frozen=True, slots=True)
class ImageInfo:
    format: str  # "png" | "jpeg"
    width: int
    height: int
    channels: int
    bit_depth: int
    has_alpha: bool
    complete: bool  # the end marker is where it should be


class ImageProbeError(Exception):
    """The header is unreadable; `kind` is "unknown-format" or "unreadable"."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def sniff_format(head: bytes) -> str | None:
    if head.startswith(PNG_SIGNATURE):
        return "png"
    if head.startswith(JPEG_SOI):
        return "jpeg"
    return None


class ImageSource(Protocol):
    """An image's bytes by offset: `size`, and `read(offset, n)` (fewer at the end of the file)."""

    size: int

    def read(self, offset: int, n: int) -> bytes: ...


class FileSource:
    """A local file as an `ImageSource`, opened without following a link (`NotRegular`), closed when
    its `with` block ends. A class, not a generator context manager: the validator opens one per image."""

    __slots__ = ("fd", "size")

    def __init__(self, path: str) -> None:
        self.fd, self.size = open_regular(path)

    def __enter__(self) -> "FileSource":
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)

    def read(self, offset: int, n: int) -> bytes:
        return os.pread(self.fd, n, offset)


def probe_image(path: str) -> ImageInfo:
    """Read just enough of `path` to know its format, size and channels (a link or FIFO: `NotRegular`)."""
    with FileSource(path) as source:
        return probe(source)


def probe(source: ImageSource, head_bytes: int = HEAD_BYTES) -> ImageInfo:
    """Format, size and channels from the first `head_bytes` of `source` (more only when a JPEG's
    frame header lies beyond them), and whether the end marker is in the last bytes."""
    size = source.size
    head = source.read(0, head_bytes)
    fmt = sniff_format(head)
    if fmt is None:
        if not head:
            raise ImageProbeError("unreadable", "the file is empty")
        raise ImageProbeError("unknown-format", f"starts with {head[:8].hex(' ')}, which is neither JPEG nor PNG")
    if fmt == "png":
        width, height, depth, channels = _png_header(head)
        tail = source.read(size - len(PNG_IEND), len(PNG_IEND)) if size >= len(PNG_IEND) else b""
        complete = tail == PNG_IEND
        return ImageInfo("png", width, height, channels, depth, channels in (2, 4), complete)
    width, height, depth, channels = _jpeg_header(source, head, head_bytes)
    tail_len = min(size, JPEG_TAIL_BYTES)
    complete = b"\xff\xd9" in source.read(size - tail_len, tail_len)
    return ImageInfo("jpeg", width, height, channels, depth, False, complete)


def _png_header(head: bytes) -> tuple[int, int, int, int]:
    if len(head) < 33 or head[12:16] != b"IHDR":
        raise ImageProbeError("unreadable", "PNG without an IHDR chunk (cut short or damaged)")
    length, = struct.unpack(">I", head[8:12])
    width, height, depth, colour = struct.unpack(">IIBB", head[16:26])
    crc, = struct.unpack(">I", head[29:33])
    if length != 13 or zlib.crc32(head[12:29]) != crc:
        raise ImageProbeError("unreadable", "PNG header checksum mismatch (damaged file)")
    if colour not in _PNG_CHANNELS or width == 0 or height == 0:
        raise ImageProbeError("unreadable", f"PNG header is invalid (size {width}x{height}, colour type {colour})")
    return width, height, depth, _PNG_CHANNELS[colour]


def _jpeg_header(source: ImageSource, buf: bytes, head_bytes: int) -> tuple[int, int, int, int]:
    """Walk the marker segments to the first SOF; segments beyond `buf` are read by offset, from the
    next marker on (the segments in between, an EXIF block say, are never read)."""
    pos, base = 2, 0  # base: file offset of buf[0]

    def ensure(n: int) -> None:
        nonlocal buf, base, pos
        if pos + n > len(buf):
            buf = source.read(base + pos, max(n, head_bytes)) if base + pos < source.size else b""
            base, pos = base + pos, 0

    while True:
        ensure(4)
        if pos + 2 > len(buf):
            raise ImageProbeError("unreadable", "JPEG ends before its frame header (no SOF marker)")
        if buf[pos] != 0xFF:
            raise ImageProbeError("unreadable", f"JPEG marker expected at byte {base + pos}")
        marker = buf[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        if marker in (0xD9, 0xDA):
            raise ImageProbeError("unreadable", "JPEG has image data before any frame header (no SOF marker)")
        if pos + 4 > len(buf):
            raise ImageProbeError("unreadable", "JPEG ends inside a marker segment")
        seg_len, = struct.unpack(">H", buf[pos + 2:pos + 4])
        if marker in _SOF_MARKERS:
            ensure(10)
            if pos + 10 > len(buf) or seg_len < 8:
                raise ImageProbeError("unreadable", "JPEG frame header cut short")
            depth, height, width, comps = struct.unpack(">BHHB", buf[pos + 4:pos + 10])
            if width == 0 or height == 0:
                raise ImageProbeError("unreadable", f"JPEG frame header is invalid (size {width}x{height})")
            return width, height, depth, comps
        if seg_len < 2:
            raise ImageProbeError("unreadable", f"JPEG segment with invalid length at byte {base + pos}")
        pos += 2 + seg_len


def decode_fully(fh: BinaryIO) -> str | None:
    """Decode every pixel of the image in `fh` with Pillow; the reason it fails, or None."""
    from PIL import Image  # imported here: only --deep pays for it

    try:
        with Image.open(fh) as img:
            img.load()
    except Exception as exc:  # Pillow raises many types for damaged data; all mean "does not decode"
        return f"{type(exc).__name__}: {exc}"
    return None
