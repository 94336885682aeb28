"""validate_dataset as a whole: pool vs. inline, strict, report shape, bounded memory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tasks.dataset import DatasetValidation, validate_dataset
from tasks.dataset.report import markdown_text
from tests.dataset.check_cases import c_14_fields, c_nan, c_unmapped, write_shard
from tests.dataset.kitti import encoded, kitti_line, make_dataset, train_facts


def _break_many(root, every: int = 10) -> None:
    """Real mistakes spread over a large dataset: NaN boxes, short lines, orphans, a wrong size."""
    for i in range(0, 2400, every):
        (root / "label_2" / f"{i:06d}.txt").write_text(kitti_line() + "\n" + kitti_line().replace(" 100.00 ", " nan ", 1) + "\n")
    (root / "label_2" / "000007.txt").write_text("car 0 0 0 1 2 3\n")
    (root / "label_2" / "000011.txt").unlink()
    (root / "image_2" / "000013.png").write_bytes(encoded("png", (1242, 375)))


def test_pool_and_inline_agree(tmp_path):
    root = make_dataset(tmp_path / "data", 2400, objects=2)
    _break_many(root)
    seen = []
    pooled = validate_dataset(DatasetValidation(train_facts(), root, workers=2), lambda d, t: seen.append((d, t)))
    inline = validate_dataset(DatasetValidation(train_facts(), root, workers=1))
    assert pooled.to_dict() | {"seconds": 0, "summary": ""} == inline.to_dict() | {"seconds": 0, "summary": ""}
    assert pooled.counts == {"pair.image-without-label": 1, "image.size-mismatch": 1,
                             "label.field-count": 1, "label.not-finite": 240}
    assert pooled.totals["images"] == 2400 and pooled.totals["labels"] == 2399
    assert seen[0] == (0, 2400) and seen[-1] == (2400, 2400) and len(seen) > 2
    # examples are capped and in file order, so reports are stable from run to run
    nan = pooled.examples["label.not-finite"]
    assert len(nan) == 20 and [p.file for p in nan] == sorted(p.file for p in nan) and nan[0].line == 2


def test_strict_fails_on_warnings(tmp_path):
    root = make_dataset(tmp_path / "data", 3)
    c_unmapped(root)
    relaxed = validate_dataset(DatasetValidation(train_facts(), root))
    strict = validate_dataset(DatasetValidation(train_facts(), root, strict=True))
    assert relaxed.ok and relaxed.warnings == 1 and relaxed.to_error() is None
    assert not strict.ok and strict.errors == 1
    assert strict.examples["class.unmapped"][0].severity == "error"
    assert "truck (1 in 1 files)" in strict.to_error().render()


def test_report_json_and_markdown(tmp_path):
    root = make_dataset(tmp_path / "data", 4, classes=("car", "Pedestrian"))
    c_14_fields(root)
    c_nan(root)  # replaces 000001.txt again: NaN wins
    (root / "label_2" / "000003.txt").write_text("")
    report = validate_dataset(DatasetValidation(train_facts(), root))
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is False and data["errors"] == 1
    assert data["totals"]["empty_label_files"] == 1
    assert data["checks"][0]["code"] == "label.not-finite"
    assert data["checks"][0]["examples"][0]["line"] == 1
    assert set(data["classes"]) == {"car", "pedestrian"}  # lower-cased as TAO does
    assert data["image_sizes"] == {"1248x384": 4}
    md = report.to_markdown()
    assert "# Dataset validation: FAILED" in md and "| `label.not-finite` | error | 1 |" in md
    assert "000001\\.txt\\:1" in md  # file:line, escaped as every name from the dataset
    err = report.to_error()
    assert err.problems and err.problems[0].code == "label.not-finite" and str(root) in err.render()


def test_separate_validation_set_is_checked_and_counted(tmp_path):
    root = make_dataset(tmp_path / "train", 5)
    val = make_dataset(tmp_path / "val", 3)
    c_nan(val)
    facts = train_facts(validation_fold=None, has_validation_data_source=True, batch_size_per_gpu=2)
    report = validate_dataset(DatasetValidation(facts, root, validation_data=val))
    assert report.frames == {"train": 5, "validation": 3}
    assert report.counts == {"label.not-finite": 1}
    assert report.examples["label.not-finite"][0].file.startswith(str(val))


def test_images_labels_subfolders_and_default_alternatives(tmp_path):
    make_dataset(tmp_path / "a", 2, image_dir="images", label_dir="labels")
    assert validate_dataset(DatasetValidation(train_facts(), tmp_path / "a")).totals["pairs"] == 2
    make_dataset(tmp_path / "b", 2, image_dir="cam0", label_dir="gt")
    report = validate_dataset(DatasetValidation(train_facts(), tmp_path / "b", images="cam0", labels="gt"))
    assert report.ok and report.totals["pairs"] == 2


_MILLION = """
import resource
from tasks.dataset.kitti_folders import pair_images
from tasks.dataset.report import ValidationReport
from tasks.dataset.tally import Tally
n = 1_000_000
names = [f"{i:07d}.png" for i in range(n)]
stems = {f"{i:07d}" for i in range(0, n, 2)}  # every other image lacks its label
tally = Tally()
items = pair_images("/data/image_2", names, stems, "/data/label_2", tally)
for i in range(n):
    tally.add_size(1000 + i % 997, 375)
    tally.add("label.not-finite", "field 5 is 'nan'", file=names[i], line=1)
report = ValidationReport.from_tally(tally, data_dir="/data", image_dir=None, label_dir=None)
assert len(items) == n and report.counts["pair.image-without-label"] == n // 2
assert len(report.examples["label.not-finite"]) == 20 and len(report.sizes) <= 201
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def test_memory_stays_bounded_for_a_million_images():
    """Listing-level state for 1M pairs (names, pairing) plus a tally full of findings: peak RSS < 500 MB."""
    done = subprocess.run([sys.executable, "-c", _MILLION], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    peak_mb = int(done.stdout.split()[-1]) / 1024
    assert peak_mb < 500, f"peak RSS {peak_mb:.0f} MB"


def test_dataset_convert_spec_names_the_folders_and_dotted_extension(tmp_path):
    from tasks.spec.facts import SpecFacts

    root = make_dataset(tmp_path / "kitti", 3, ext="jpg", image_dir="cam", label_dir="gt")
    facts = SpecFacts(kind="dataset_convert", file="convert.txt", image_extension=".jpg",
                      kitti_image_dir_name="cam", kitti_label_dir_name="gt")
    report = validate_dataset(DatasetValidation(facts, root))
    assert report.ok and report.counts == {} and report.totals["pairs"] == 3
    assert report.image_dir == str(root / "cam")


def _shards(folder: Path, records: dict[int, int]) -> Path:
    """A dataset_convert output folder: fold -> records in its one shard (0 records: an empty file)."""
    folder.mkdir()
    for fold, n in records.items():
        write_shard(folder / f"kitti_trainval-fold-{fold:03d}-of-002-shard-00000-of-00001", n)
    return folder


def test_empty_validation_shards_point_at_the_tfrecords_not_the_kitti_folder(tmp_path):
    """TFRecords whose validation fold holds no record (a conversion that wrote empty shards): the
    finding and the error name the TFRecords folder and say to convert again, not to add images."""
    root = make_dataset(tmp_path / "data", 6)
    shards = _shards(tmp_path / "tfrecords", {0: 0, 1: 5})
    facts = train_facts(tfrecords_paths=["/workspace/tfrecords/kitti_trainval-fold-*"], validation_fold=0,
                        batch_size_per_gpu=4)
    report = validate_dataset(DatasetValidation(facts, root, tfrecords=shards))
    assert report.frames == {"train": 5, "validation": 0}
    (finding,) = report.examples["train.validation-smaller-than-batch"]
    assert finding.file == str(shards) and "hold 0 records" in finding.message
    assert str(shards) in finding.hint and "dataset_convert" in finding.hint
    assert "add validation images" not in finding.hint
    error = report.to_error()
    assert error.where == str(shards) and str(shards) in error.fix
    assert f"(fix: {markdown_text(finding.hint)})" in report.to_markdown()


def test_small_validation_fold_names_the_tfrecords_and_empty_shards_stop_training(tmp_path):
    root = make_dataset(tmp_path / "data", 6)
    facts = train_facts(tfrecords_paths=["/workspace/tfrecords/kitti_trainval-fold-*"], validation_fold=0,
                        batch_size_per_gpu=4, scalar_logging_frequency=1)
    shards = _shards(tmp_path / "small", {0: 2, 1: 5})
    (finding,) = validate_dataset(DatasetValidation(facts, root, tfrecords=shards)).examples[
        "train.validation-smaller-than-batch"]
    assert finding.file == str(shards) and finding.message.startswith("2 validation records in the TFRecords")
    assert "val_split" in finding.hint
    # every shard empty: no training step either, and that finding names the TFRecords too
    shards = _shards(tmp_path / "empty", {0: 0, 1: 0})
    report = validate_dataset(DatasetValidation(facts, root, tfrecords=shards))
    (steps,) = report.examples["train.logging-frequency"]
    assert steps.file == str(shards) and "0 steps per epoch" in steps.message and str(shards) in steps.hint
    # counted in the KITTI folders, the finding keeps pointing at the spec and the images
    val = make_dataset(tmp_path / "val", 2)
    kitti = validate_dataset(DatasetValidation(
        train_facts(validation_fold=None, has_validation_data_source=True, batch_size_per_gpu=4), root,
        validation_data=val))
    (finding,) = kitti.examples["train.validation-smaller-than-batch"]
    assert finding.file == "spec.txt" and finding.hint == "add validation images or lower batch_size_per_gpu"


HOSTILE_CLASSES = ["<img/src=x/onerror=alert(1)>", "[link](http://evil)", "![pic](http://evil/x.png)", "`code`",
                   "*bold*", "__under__", "<script>alert(1)</script>", "|pipe|", "&lt;b&gt;", "www.evil.example",
                   "~~gone~~", "<http://evil>", "\\*"]


def test_the_markdown_report_shows_hostile_names_as_text(tmp_path):
    """Class names, file names and the dataset's path are the dataset's: in the `dataset-validation`
    artifact they must read as the characters they are. Rendered here with markdown-it (CommonMark
    with GFM's tables and strikethrough), the parser family the UIs use."""
    from markdown_it import MarkdownIt

    root = make_dataset(tmp_path / "data\n# Heading <b>x</b>", 3)
    (root / "label_2" / "000000.txt").write_text("".join(kitti_line(c) + "\n" for c in HOSTILE_CLASSES))
    (root / "image_2" / "evil\n- [x](javascript:alert(1)).png").write_bytes(encoded("png", (1248, 384)))
    report = validate_dataset(DatasetValidation(train_facts(), root))
    assert report.counts["class.unmapped"] == 1 and report.counts["pair.image-without-label"] == 1
    md = report.to_markdown()
    lines = md.splitlines()
    renderer = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    page = renderer.render(md)
    for tag in ("<img", "<script", "<a ", "<em>", "<strong>", "<s>", "<b>", "<h2>Heading", "<li><a"):
        assert tag not in page, f"{tag} rendered from the dataset's text:\n{page}"
    text = "".join(token.content for block in renderer.parse(md) if block.children
                   for token in block.children if token.type in ("text", "text_special", "code_inline"))
    for name in HOSTILE_CLASSES:
        assert name.lower() in text, name  # lower-cased as TAO does, and shown character for character
    assert "evil - [x](javascript:alert(1)).png" in text and "# Heading <b>x</b>" in text
    class_rows = [line for line in lines if line.startswith("| ") and line.count(" | ") == 2]
    assert len(report.class_instances) >= len(HOSTILE_CLASSES)
    assert len(class_rows) == len(report.class_instances) + 1, "a row per class (and the header): none split or added"
    assert all(line.count("|") - line.count("\\|") == 4 for line in class_rows)
