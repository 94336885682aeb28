"""The cases of the per-code tests: each breaks a clean dataset on disk (real PNG/JPEG bytes, real label text)."""

from __future__ import annotations

import io
import os
import shutil
import struct
from pathlib import Path

from PIL import Image

from tasks.dataset.tfrecords import masked_crc
from tasks.spec.facts import PathField
from tests.dataset.kitti import encoded, kitti_line, make_dataset, png16

W, H = 1248, 384


def write_shard(path: Path, records: int) -> None:
    """A real TFRecord file: <len><masked crc(len)><data><masked crc(data)> per record."""
    with open(path, "wb") as fh:
        for i in range(records):
            data = f"frame-{i}".encode()
            length = struct.pack("<Q", len(data))
            fh.write(length + struct.pack("<I", masked_crc(length)) + data + struct.pack("<I", masked_crc(data)))


def _label(root: Path, stem: str, *lines: str) -> None:
    (root / "label_2" / f"{stem}.txt").write_text("\n".join(lines) + "\n")


def _image(root: Path, name: str, data: bytes) -> None:
    (root / "image_2" / name).write_bytes(data)


def _save(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def _corrupt_idat(data: bytes) -> bytes:
    """Flip bytes inside the PNG's compressed data; header and IEND stay intact."""
    start = data.index(b"IDAT") + 4 + 200
    return data[:start] + bytes(b ^ 0x5A for b in data[start:start + 64]) + data[start + 64:]


# Each case mutates a clean 3-pair dataset at root (000000..000002, 1248x384 PNG, car/pedestrian)
# and returns (facts overrides, DatasetValidation keyword arguments).
def c_size16(root):
    return dict(output_width=500), {}


def c_minimum(root):
    return dict(output_width=464, output_height=256), {}


def c_channels(root):
    return dict(output_channels=4), {}


def c_spec_ext(root):  # facts §7: a train spec's extension is used as '.' + ext
    return dict(image_extension=".png"), {}


def c_data_missing(root):
    shutil.rmtree(root)
    return {}, {}


def c_image_dir(root):
    (root / "image_2").rename(root / "pictures")
    return {}, {}


def c_label_dir(root):
    (root / "label_2").rename(root / "annotations")
    return {}, {}


def c_no_images(root):
    for p in (root / "image_2").iterdir():
        p.unlink()
    return {}, {}


def c_symlink(root):  # an image that is a link to a file outside the dataset
    outside = root.parent / "outside.png"
    outside.write_bytes(encoded("png", (77, 33)))
    (root / "image_2" / "000003.png").symlink_to(outside)
    _label(root, "000003", kitti_line())
    return {}, {}


def c_fifo(root):
    os.mkfifo(root / "image_2" / "000003.png")
    _label(root, "000003", kitti_line())
    return {}, {}


def c_stray(root):
    (root / "image_2" / "notes.txt").write_text("taken on a sunny day")
    return {}, {}


def c_orphan_image(root):
    (root / "label_2" / "000001.txt").unlink()
    return {}, {}


def c_orphan_label(root):
    (root / "image_2" / "000001.png").unlink()
    return {}, {}


def c_duplicate(root):
    _image(root, "000002.jpg", encoded("jpg", (W, H)))
    return {}, {}


def c_unknown_format(root):
    _image(root, "000001.png", _save(Image.new("RGB", (W, H)), "GIF"))
    return {}, {}


def c_format_mismatch(root):  # a .jpg that is a PNG, in a jpg dataset
    for i in range(3):
        (root / "image_2" / f"{i:06d}.png").unlink()
        _image(root, f"{i:06d}.jpg", encoded("jpg", (W, H)))
    _image(root, "000001.jpg", encoded("png", (W, H)))
    return dict(image_extension="jpg"), {}


def c_ext_mismatch(root):
    (root / "image_2" / "000001.png").unlink()
    _image(root, "000001.jpeg", encoded("jpeg", (W, H)))
    return {}, {}


def c_unreadable(root):
    _image(root, "000001.png", b"")
    return {}, {}


def c_truncated(root):  # a corrupt (cut) JPEG in a jpg dataset
    for i in range(3):
        (root / "image_2" / f"{i:06d}.png").unlink()
        _image(root, f"{i:06d}.jpg", encoded("jpg", (W, H)))
    data = encoded("jpg", (W, H))
    _image(root, "000001.jpg", data[: len(data) // 2])
    return dict(image_extension="jpg"), {}


def c_corrupt(root):
    _image(root, "000001.png", _corrupt_idat(encoded("png", (W, H))))
    return {}, {"deep": True}


def c_cmyk(root):
    for i in range(3):
        (root / "image_2" / f"{i:06d}.png").unlink()
        _image(root, f"{i:06d}.jpg", encoded("jpg", (W, H)))
    _image(root, "000001.jpg", _save(Image.new("CMYK", (W, H), (0, 50, 100, 0)), "JPEG"))
    return dict(image_extension="jpg"), {}


def c_gray(root):
    _image(root, "000001.png", encoded("png", (W, H), "L"))
    return {}, {}


def c_alpha(root):
    _image(root, "000001.png", encoded("png", (W, H), "RGBA"))
    return {}, {}


def c_16bit(root):
    _image(root, "000001.png", png16((W, H)))
    return {}, {}


def c_size(root):
    _image(root, "000001.png", encoded("png", (1242, 375)))
    return {}, {}


def c_label_bytes(root):
    (root / "label_2" / "000001.txt").write_bytes(b"\xff\xfe\x00c\x00a\x00r")
    return {}, {}


def c_14_fields(root):
    _label(root, "000001", kitti_line(), " ".join(kitti_line().split()[:14]))
    return {}, {}


def c_score(root):
    _label(root, "000001", kitti_line() + " 0.97")
    return {}, {}


def c_class_missing(root):
    _label(root, "000001", " ".join(kitti_line().split()[1:]))
    return {}, {}


def c_nan_text(root):
    _label(root, "000001", kitti_line().replace(" 100.00 ", " x100 ", 1))
    return {}, {}


def c_nan(root):
    _label(root, "000001", kitti_line().replace(" 100.00 ", " nan ", 1))
    return {}, {}


def c_not_ascii(root):
    _label(root, "000001", kitti_line("voiture_é"))
    return {}, {}


def c_long_line(root):
    _label(root, "000001", kitti_line() + " 1.0" * 20_000)
    return {}, {}


def c_nan_3d(root):
    _label(root, "000001", kitti_line().replace(" 1.50 ", " nan ", 1))
    return {}, {}


def _one_line(name: str, line: str):
    """A case whose label 000001.txt holds just `line`."""
    def case(root):
        _label(root, "000001", line)
        return {}, {}
    case.__name__ = name
    return case


c_truncation = _one_line("c_truncation", "car 1.50" + kitti_line()[len("car 0.00"):])
c_occlusion = _one_line("c_occlusion", "car 0.00 5" + kitti_line()[len("car 0.00 0"):])
c_inverted = _one_line("c_inverted", kitti_line(box=(200, 120, 100, 220)))
c_outside = _one_line("c_outside", kitti_line(box=(1500, 100, 1600, 200)))
c_exceeds = _one_line("c_exceeds", kitti_line(box=(1200, 100, 1300, 200)))


def c_tiny(root):
    _label(root, "000001", kitti_line(box=(100, 100, 105, 140)))
    return dict(min_bbox_width=10.0, min_bbox_height=10.0), {}


def c_unmapped(root):
    _label(root, "000001", kitti_line("Truck"))
    return {}, {}


def c_upper_key(root):
    return dict(target_class_mapping={"Car": "car", "pedestrian": "pedestrian"},
                mapping_key_lines={"Car": 12, "pedestrian": 16}), {}


def c_targets(root):
    return dict(cost_function_classes=["car"]), {}


def c_no_instances(root):
    return dict(target_class_mapping={"car": "car", "pedestrian": "pedestrian", "cyclist": "pedestrian"},
                mapping_key_lines={"car": 12, "pedestrian": 16, "cyclist": 20}), {}


def c_no_validation(root):
    return dict(validation_fold=None), {}


def c_val_small(root):
    val = make_dataset(root.parent / "val", 2)
    return dict(validation_fold=None, has_validation_data_source=True, batch_size_per_gpu=4), {
        "validation_data": val}


def c_logging(root):
    return dict(scalar_logging_frequency=50, batch_size_per_gpu=1), {}


def c_infrequent(root):
    return dict(infrequent_logging_frequency=20, num_epochs=10), {}


def c_not_root(root):
    path = PathField("dataset_config.data_sources[0].image_directory_path", "/workspace/data/training/image_2", 7, 27)
    return dict(path_fields=[path]), {}


def c_no_match(root):
    shards = root.parent / "tfrecords"
    shards.mkdir()
    return dict(tfrecords_paths=["/workspace/tfrecords/kitti_trainval-fold-*"]), {"tfrecords": shards}


def c_not_shard(root):
    shards = root.parent / "tfrecords"
    shards.mkdir()
    for fold in range(2):
        write_shard(shards / f"kitti_trainval-fold-{fold:03d}-of-002-shard-00000-of-00001", 3)
    (shards / "kitti_trainval_warning.json").write_text('{"car": []}')
    return dict(tfrecords_paths=["/workspace/tfrecords/*"]), {"tfrecords": shards}


def c_fold_missing(root):
    shards = root.parent / "tfrecords"
    shards.mkdir()
    write_shard(shards / "kitti_trainval-fold-001-of-002-shard-00000-of-00001", 3)
    return dict(tfrecords_paths=["/workspace/tfrecords/kitti_trainval-fold-*"], validation_fold=0), {
        "tfrecords": shards}


CASES = {
    "spec.size-not-multiple-of-16": c_size16, "spec.size-below-minimum": c_minimum,
    "spec.channels-invalid": c_channels, "spec.image-extension-invalid": c_spec_ext,
    "layout.data-dir-missing": c_data_missing, "layout.image-dir-missing": c_image_dir,
    "layout.label-dir-missing": c_label_dir, "layout.no-images": c_no_images, "layout.stray-file": c_stray,
    "pair.image-without-label": c_orphan_image, "pair.label-without-image": c_orphan_label,
    "pair.duplicate-frame": c_duplicate, "image.unknown-format": c_unknown_format,
    "image.format-mismatch": c_format_mismatch, "image.extension-mismatch": c_ext_mismatch,
    "image.unreadable": c_unreadable, "image.truncated": c_truncated, "image.corrupt": c_corrupt,
    "image.channels-unsupported": c_cmyk, "image.channels-mismatch": c_gray, "image.alpha": c_alpha,
    "image.16-bit": c_16bit, "image.size-mismatch": c_size, "label.unreadable": c_label_bytes,
    "label.field-count": c_14_fields, "label.score-column": c_score, "label.class-missing": c_class_missing,
    "label.not-a-number": c_nan_text, "label.not-finite": c_nan, "label.not-finite-unused": c_nan_3d,
    "label.class-not-ascii": c_not_ascii, "label.line-too-long": c_long_line,
    "layout.symlink": c_symlink, "layout.special-file": c_fifo, "label.truncation-range": c_truncation,
    "label.occlusion-range": c_occlusion, "label.box-degenerate": c_inverted,
    "label.box-outside-image": c_outside, "label.box-exceeds-image": c_exceeds, "label.box-too-small": c_tiny,
    "class.unmapped": c_unmapped, "class.uppercase-mapping-key": c_upper_key,
    "class.target-set-mismatch": c_targets, "class.no-instances": c_no_instances,
    "train.no-validation-data": c_no_validation, "train.validation-smaller-than-batch": c_val_small,
    "train.logging-frequency": c_logging, "train.infrequent-logging": c_infrequent,
    "train.image-dir-not-root": c_not_root, "train.tfrecords-no-match": c_no_match,
    "train.tfrecords-not-shard": c_not_shard, "train.validation-fold-missing": c_fold_missing,
}
