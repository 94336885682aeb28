"""Header probes against Pillow's own reading of the same real files, and TFRecord framing."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tasks.dataset.images import ImageProbeError, probe_image
from tasks.dataset.tfrecords import NotATFRecord, _crc32c, count_records, fold_of
from tests.dataset.check_cases import write_shard
from tests.dataset.kitti import encoded, png16


@pytest.mark.parametrize("fmt,mode,channels,alpha", [
    ("png", "RGB", 3, False), ("png", "L", 1, False), ("png", "RGBA", 4, True), ("png", "LA", 2, True),
    ("png", "P", 3, False), ("jpg", "RGB", 3, False), ("jpg", "L", 1, False),
])
@pytest.mark.parametrize("size", [(1248, 384), (17, 5)])
def test_probe_matches_pillow(tmp_path, fmt, mode, channels, alpha, size):
    path = tmp_path / f"x.{fmt}"
    path.write_bytes(encoded(fmt, size, mode))
    info = probe_image(str(path))
    with Image.open(path) as img:
        assert (info.width, info.height) == img.size
    assert (info.format, info.channels, info.has_alpha, info.bit_depth, info.complete) == (
        "jpeg" if fmt == "jpg" else "png", channels, alpha, 8, True)


def test_jpeg_frame_header_beyond_the_first_block(tmp_path):
    """A 60 KB EXIF/ICC block before the SOF makes the probe read on by segment length."""
    img = Image.new("RGB", (640, 480), (10, 200, 30))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", icc_profile=b"\x00" * 60_000)
    path = tmp_path / "big-header.jpg"
    path.write_bytes(buf.getvalue())
    info = probe_image(str(path))
    assert (info.width, info.height, info.channels, info.complete) == (640, 480, 3, True)


def test_16_bit_png(tmp_path):
    path = tmp_path / "deep.png"
    path.write_bytes(png16((32, 16)))
    info = probe_image(str(path))
    assert (info.bit_depth, info.channels, info.width, info.height) == (16, 1, 32, 16)


@pytest.mark.parametrize("data,kind", [
    (b"", "unreadable"),
    (b"GIF89a" + b"\x00" * 100, "unknown-format"),
    (encoded("png", (64, 64))[:20], "unreadable"),  # cut inside IHDR
    (encoded("jpg", (64, 64))[:100], "unreadable"),  # cut before the SOF
])
def test_unreadable_headers(tmp_path, data, kind):
    path = tmp_path / "bad.png"
    path.write_bytes(data)
    with pytest.raises(ImageProbeError) as info:
        probe_image(str(path))
    assert info.value.kind == kind


def test_png_header_checksum(tmp_path):
    data = bytearray(encoded("png", (64, 64)))
    data[17] ^= 0xFF  # inside the width, so the IHDR CRC no longer matches
    path = tmp_path / "flipped.png"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageProbeError, match="checksum"):
        probe_image(str(path))


def test_crc32c_known_vector():
    assert _crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value (RFC 3720)


def test_count_records_and_folds(tmp_path):
    shard = tmp_path / "kitti-fold-003-of-005-shard-00001-of-00010"
    write_shard(shard, 7)
    assert count_records(str(shard)) == 7 and fold_of(str(shard)) == 3
    (tmp_path / "cut").write_bytes(shard.read_bytes()[:-3])
    with pytest.raises(NotATFRecord, match="past the end"):
        count_records(str(tmp_path / "cut"))
    (tmp_path / "x_warning.json").write_text('{"car": [["000001", 200, 120, 100, 220]]}')
    with pytest.raises(NotATFRecord, match="checksum"):
        count_records(str(tmp_path / "x_warning.json"))


def test_local_glob_skips_dot_files_like_glob_glob(tmp_path):
    from tasks.dataset.tfrecords import shard_glob

    write_shard(tmp_path / "kitti-fold-000-of-002-shard-00000-of-00001", 1)
    (tmp_path / ".source.json").write_text("{}")
    (tmp_path / "kitti_warning.json").write_text("{}")
    names = [p.rsplit("/", 1)[1] for p in shard_glob(str(tmp_path), "/workspace/tfrecords/*")[0]]
    assert names == ["kitti-fold-000-of-002-shard-00000-of-00001", "kitti_warning.json"]
    assert len(shard_glob(str(tmp_path), "/workspace/tfrecords/kitti-fold-*")[0]) == 1


def test_glob_reaches_into_subfolders_wherever_it_points(tmp_path):
    """`<reference>/kitti_trainval/*` (NVIDIA's notebook layout): shards in a sub-folder of the staged folder."""
    from tasks.dataset.tfrecords import shard_glob

    sub = tmp_path / "kitti_trainval"
    sub.mkdir()
    for fold in range(2):
        write_shard(sub / f"kitti-fold-{fold:03d}-of-002-shard-00000-of-00001", 2)
    (tmp_path / "kitti_warning.json").write_text("{}")  # beside the sub-folder: not matched
    rebased = str(tmp_path / "kitti_trainval" / "*")
    want = [str(p) for p in sorted(sub.iterdir())]
    assert shard_glob(str(tmp_path), rebased) == (want, [])  # the flow: host facts, rebased onto the staging
    assert shard_glob(str(tmp_path), "/workspace/tao/data/tfrecords/kitti_trainval/*")[0] == want  # CLI: parent
    assert shard_glob(str(sub), "/workspace/tao/data/tfrecords/kitti_trainval/*")[0] == want  # CLI: the folder
    assert shard_glob(str(sub), "../*")[0] == want  # `..` never climbs out of the staged folder
    (sub / "kitti-fold-009").symlink_to("/etc/hostname")
    files, blocked = shard_glob(str(tmp_path), rebased)
    assert files == want and blocked == [(str(sub / "kitti-fold-009"), "symlink")]


def test_label_lines_split_as_tao_reads_text(tmp_path):
    """Universal newlines (\\r\\n, \\r, \\n) like TAO's open(); the same on the small and the streaming path."""
    from tasks.dataset.labels import MAX_LINE_BYTES, WHOLE_FILE_BYTES, NotText, text_lines

    def lines(data: bytes) -> list:
        path = tmp_path / "l.txt"
        path.write_bytes(data)
        with open(path, "rb", buffering=0) as fh:
            return list(text_lines(fh, len(data)))

    assert lines(b"a\r\nb\rc\n\nd") == [(1, "a"), (2, "b"), (3, "c"), (4, ""), (5, "d")]
    long = b"x" * (MAX_LINE_BYTES + 1)
    big = b"a\r\n" * (WHOLE_FILE_BYTES // 3) + long + b"\nz\rw\n"  # over 1 MiB: read a line at a time
    got = lines(big)
    n = WHOLE_FILE_BYTES // 3
    assert got[n] == (n + 1, None) and got[n + 1:] == [(n + 2, "z"), (n + 3, "w")]
    assert lines(b"a\n" + long + b"\nb")[1] == (2, None)
    with pytest.raises(NotText) as info:
        lines(b"car 1\r\ntruck \xff 2\n")
    assert info.value.line == 2 and "byte 6 of the line" in str(info.value)
