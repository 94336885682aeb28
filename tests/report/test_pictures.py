"""The pictures on real inputs: the generated demo dataset, NVIDIA's recorded status.json files,
and hostile dataset folders (links, FIFOs, decompression bombs, markup in class names)."""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from xml.etree import ElementTree

import pytest
from PIL import Image

import tasks.report.kitti_sample as kitti_sample
from tasks.job.demo import generate_demo_dataset, kitti_line
from tasks.report import (
    Comparison,
    RunReport,
    contact_sheet,
    dataset_pictures,
    dataset_summary,
    render_html_report,
    training_curves,
    training_history,
)
from tasks.report.page import report_sections
from tests.standin.traces import READINGS, SCENARIOS, traces_root

MAPPING = {"rectangle": "rectangle", "square": "rectangle", "ellipse": "ellipse"}
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return generate_demo_dataset(tmp_path_factory.mktemp("demo"), count=24).root


def label_counts(root: Path) -> Counter:
    """Objects per class, read straight from the label files (the expected values)."""
    return Counter(line.split()[0] for path in (root / "label_2").glob("*.txt")
                   for line in path.read_text().splitlines() if line.strip())


def test_a_small_dataset_is_counted_exactly(demo):
    summary = dataset_summary(demo, MAPPING)
    assert summary.images_total == summary.frames_sampled == 24 and summary.exact
    expected = label_counts(demo)
    assert {c.name: c.instances for c in summary.classes} == dict(expected)
    assert {c.name: c.target for c in summary.classes} == MAPPING
    assert summary.objects_sampled == sum(expected.values())
    assert summary.image_sizes == {"960x544": 24}
    # Box heights by the class TAO trains: square is counted as rectangle.
    assert sum(summary.box_counts["rectangle"]) == expected["rectangle"] + expected["square"]
    assert sum(summary.box_counts["ellipse"]) == expected["ellipse"]


def _tiny_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 40), "#808080").save(out, "PNG")
    return out.getvalue()


def test_a_large_folder_costs_only_its_sample(tmp_path, monkeypatch):
    images, labels = tmp_path / "image_2", tmp_path / "label_2"
    images.mkdir(), labels.mkdir()
    (tmp_path / "one.png").write_bytes(_tiny_png())
    for i in range(3000):
        os.link(tmp_path / "one.png", images / f"{i:05d}.png")
        (labels / f"{i:05d}.txt").write_text(kitti_line("car", (1, 1, 30, 20)) + "\n")
    opened = []
    real = kitti_sample.open_regular
    monkeypatch.setattr(kitti_sample, "open_regular", lambda path: opened.append(path) or real(path))
    summary = dataset_summary(tmp_path, {"car": "car"}, sample=50)
    assert (summary.images_total, summary.frames_sampled, summary.exact) == (3000, 50, False)
    assert summary.classes[0].instances == 50
    assert len(opened) <= 50, "only the sampled images' headers are opened"
    assert "a sample of 50 of 3000 images" in dataset_pictures(summary)[0].title
    # The same frames on every run, whatever order the file system lists them in.
    assert dataset_summary(tmp_path, sample=50).model_dump() == dataset_summary(tmp_path, sample=50).model_dump()
    opened.clear()
    sheet = contact_sheet(tmp_path, count=8)
    assert len(opened) <= 8 * 3 and sheet.alt == "8 of 3000 frames"


def test_the_contact_sheet_draws_each_box_where_its_label_puts_it(tmp_path):
    (tmp_path / "image_2").mkdir(), (tmp_path / "label_2").mkdir()
    Image.new("RGB", (640, 400), (128, 128, 128)).save(tmp_path / "image_2" / "a.png")
    (tmp_path / "label_2" / "a.txt").write_text(kitti_line("car", (100, 100, 300, 300)) + "\n")
    sheet = contact_sheet(tmp_path, count=1, classes=["car"])
    image = Image.open(io.BytesIO(sheet.data)).convert("RGB")
    assert (sheet.mime, image.size) == ("image/jpeg", (320, 200))
    # 640x400 shown at 291x182 (scale 0.455), centred: x offset 14. The box's left edge is at
    # x = 14 + 100 * 0.455 = 59.5, from y = 45.5 to 136.5; its inside stays the image's grey.
    def near(pixel, colour, tolerance=48):
        return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour))

    assert near(image.getpixel((60, 100)), (0x00, 0x72, 0xB2)), image.getpixel((60, 100))
    assert near(image.getpixel((100, 100)), (128, 128, 128))
    assert near(image.getpixel((5, 100)), (0xF4, 0xF4, 0xF4)), "outside the image: the sheet's background"


def _bomb_png(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
            + b"\x00\x00\x00\x00IEND\xaeB`\x82")


def test_hostile_dataset_files_are_neither_followed_nor_opened(tmp_path):
    images, labels = tmp_path / "image_2", tmp_path / "label_2"
    images.mkdir(), labels.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(kitti_line("secret", (1, 1, 9, 9)) + "\n")
    Image.new("RGB", (64, 40)).save(outside / "elsewhere.png")
    Image.new("RGB", (64, 40)).save(images / "a.png")
    os.symlink(outside / "secret.txt", labels / "a.txt")  # a label that is a link: not read
    os.symlink(outside / "elsewhere.png", images / "b.png")  # an image that is a link: not listed
    os.mkfifo(images / "c.png")  # a FIFO would block a reader for ever
    (images / "d.png").write_bytes(_bomb_png(60_000, 60_000))  # 3.6 gigapixels
    (labels / "d.txt").write_text(kitti_line("<img/src=x/onerror=alert(1)>", (1, 1, 9, 9)) + "\n")
    summary = dataset_summary(tmp_path)
    assert summary.images_total == 2, "a.png and d.png; the link and the FIFO are not images here"
    assert "secret" not in {c.name for c in summary.classes}
    sheet = contact_sheet(tmp_path, count=4)
    assert sheet.alt == "1 of 2 frames", "the bomb is listed but never decoded"
    page = render_html_report(RunReport(title="t", dataset=summary))
    assert "<img/src=x" not in page and "&lt;img/src=x/onerror=alert(1)&gt;" in page
    markdown = "".join(s.markdown() for s in report_sections(RunReport(title="t", dataset=summary)))
    assert "<img/src" not in markdown and "&lt;img/src" in markdown
    for picture in dataset_pictures(summary):
        ElementTree.fromstring(picture.data)  # still well-formed XML: the name was escaped


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_training_history_of_every_recorded_ending(reading, scenario):
    history = training_history(traces_root() / "train" / reading / scenario / "status.json")
    epochs = [v.epoch for v in history.validations]
    assert epochs == sorted(set(epochs)) and all(1 <= e <= 3 for e in epochs)
    if scenario in ("complete", "rerun_finished"):
        assert [(v.epoch, v.mean_ap) for v in history.validations] == [(1, 45.0), (2, 55.0), (3, 65.0)]
        assert history.validations[-1].average_precision == {"car": 70.0, "pedestrian": 60.0}
        assert history.num_epochs == 3 and all(p.loss is not None for p in history.epochs)
    if scenario == "spec_rejected":
        assert history.epochs == [] and history.validations == []


def test_training_curves_draw_loss_map_and_each_class():
    history = training_history(traces_root() / "train" / "zero-based" / "complete" / "status.json")
    picture = training_curves(history)
    svg = ElementTree.fromstring(picture.data)
    lines = svg.findall(f"{SVG}polyline")
    assert len(lines) == 4, "loss, mAP, car, pedestrian"
    assert [len(line.get("points").split()) for line in lines] == [3, 3, 3, 3]
    assert (int(svg.get("width")), int(svg.get("height"))) == (picture.width, picture.height)
    assert picture.alt.endswith("last validation mAP 65.0 %")


def test_the_comparison_names_every_class_and_the_change():
    report = RunReport(title="t", comparison=Comparison(challenger={"car": 70.0, "bus": 40.0},
                                                        champion={"car": 72.0, "truck": 10.0}, outcome="Not promoted",
                                                        reasons=["car: AP dropped 2.0 points"]))
    section = report_sections(report)[0]
    assert section.heading == "Champion vs new model: Not promoted"
    assert section.rows == [["bus", "–", "40.0", "–"], ["car", "72.0", "70.0", "-2.0"],
                            ["truck", "10.0", "–", "–"], ["mAP", "41.0", "55.0", "+14.0"]]
    svg = ElementTree.fromstring(section.pictures[0].data)
    assert len(svg.findall(f"{SVG}rect")) > 6
    first = report_sections(RunReport(title="t", comparison=Comparison(challenger={"car": 70.0})))[0]
    assert "no champion (first model)" in first.summary and "no champion yet" in first.pictures[0].alt


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_the_html_report_is_one_self_contained_file(demo):
    report = RunReport(title="demo", dataset=dataset_summary(demo, MAPPING), samples=contact_sheet(demo),
                       training=training_history(traces_root() / "train" / "one-based" / "complete" / "status.json"),
                       comparison=Comparison(challenger={"car": 70.0}, champion={"car": 60.0}, outcome="Promoted"))
    page = render_html_report(report)
    parser = _Tags()
    parser.feed(page)
    tags = parser.tags
    images = [attrs["src"] for tag, attrs in tags if tag == "img"]
    assert len(images) == 1 + 1 + 3 + 1 and all(src.startswith("data:image/") for src in images)
    assert not [t for t, a in tags if t in ("script", "link", "iframe", "object") or "href" in a]
    assert any(t == "meta" and "default-src 'none'" in a.get("content", "") for t, a in tags)
    for section in report_sections(report):
        markdown = section.markdown()
        assert markdown.count("](data:image/") == len(section.pictures) and "http://" not in markdown
        assert len(markdown) < 300_000, f"{section.key}: {len(markdown)} bytes"
        for picture in section.pictures:
            if picture.mime == "image/svg+xml":
                ElementTree.fromstring(picture.data)
            else:
                Image.open(io.BytesIO(picture.data)).verify()
