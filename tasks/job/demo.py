"""The bundled demo dataset: small, valid, KITTI-format, generated (no download).

Shapes on noisy backgrounds, labelled as `rectangle`, `square` (mapped onto rectangle by the
demo spec) and `ellipse`. Deterministic for a seed, so the demo's cache keys are stable.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import yaml
from PIL import Image, ImageDraw

DEMO_WIDTH = 960
DEMO_HEIGHT = 544
DEMO_CLASSES = ("rectangle", "square", "ellipse")


@dataclass(frozen=True)
class DemoDataset:
    root: Path
    images: int
    objects: int

    @property
    def image_dir(self) -> Path:
        return self.root / "image_2"

    @property
    def label_dir(self) -> Path:
        return self.root / "label_2"


def kitti_line(cls: str, box: tuple[float, float, float, float]) -> str:
    """A 15-field KITTI line; DetectNet_v2 reads the class and the 2-D box, the rest is zero."""
    x1, y1, x2, y2 = box
    return f"{cls} 0.00 0 0.00 {x1:.2f} {y1:.2f} {x2:.2f} {y2:.2f} 0.00 0.00 0.00 0.00 0.00 0.00 0.00"


def generate_demo_dataset(root: Path, *, count: int = 64, seed: int = 7) -> DemoDataset:
    """Write COUNT PNG images (960x544 RGB) with KITTI labels under ROOT/image_2 and ROOT/label_2.

    Files are written under temporary names and renamed, so an interrupted run never leaves a
    truncated image behind; an existing complete dataset is reused.
    """
    root = Path(root)
    image_dir, label_dir = root / "image_2", root / "label_2"
    image_dir.mkdir(parents=True, exist_ok=True)
    label_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    objects = 0
    for index in range(count):
        stem = f"{index:06d}"
        image_path, label_path = image_dir / f"{stem}.png", label_dir / f"{stem}.txt"
        lines = _draw_scene(rng, image_path if not image_path.exists() else None)
        objects += len(lines)
        if not label_path.exists():
            tmp = label_path.with_suffix(".txt.tmp")
            tmp.write_text("\n".join(lines) + "\n")
            tmp.replace(label_path)
    return DemoDataset(root=root, images=count, objects=objects)


def _draw_scene(rng: random.Random, image_path: Path | None) -> list[str]:
    # Draw even when the image exists, so the random stream (and thus the labels) stay identical.
    base = tuple(rng.randrange(30, 90) for _ in range(3))
    image = Image.new("RGB", (DEMO_WIDTH, DEMO_HEIGHT), base)
    draw = ImageDraw.Draw(image)
    for _ in range(40):  # background clutter that is not an object
        x, y = rng.randrange(DEMO_WIDTH), rng.randrange(DEMO_HEIGHT)
        shade = tuple(min(255, c + rng.randrange(0, 40)) for c in base)
        draw.line((x, y, x + rng.randrange(-60, 60), y + rng.randrange(-60, 60)), fill=shade, width=2)
    lines = []
    for _ in range(rng.randrange(1, 5)):
        cls = rng.choice(DEMO_CLASSES)
        w = rng.randrange(40, 220)
        h = w if cls == "square" else rng.randrange(40, 220)
        x1, y1 = rng.randrange(0, DEMO_WIDTH - w), rng.randrange(0, DEMO_HEIGHT - h)
        box = (x1, y1, x1 + w, y1 + h)
        colour = tuple(rng.randrange(120, 256) for _ in range(3))
        if cls == "ellipse":
            draw.ellipse(box, fill=colour)
        else:
            draw.rectangle(box, fill=colour)
        lines.append(kitti_line(cls, box))
    if image_path is not None:
        tmp = image_path.with_suffix(".png.tmp")
        image.save(tmp, format="PNG", compress_level=1)
        tmp.replace(image_path)
    return lines


SPECS_DIR = Path(__file__).resolve().parents[2] / "specs"
DEMO_MODEL_FILE = "resnet18.hdf5"


def write_demo_config(demo_dir: Path, *, epochs: int = 3, image: str | None = None, docker_gpus: str = "auto",
                      count: int = 64) -> Path:
    """Lay out the demo folder (data, empty TFRecords, base model folder) and write demo.yaml for it.

    The config uses paths relative to itself, so `taoflow plan DEMO_DIR/demo.yaml` and
    `taoflow run DEMO_DIR/demo.yaml` work from anywhere. `count` images (64 for the demo).

    >>> import tempfile
    >>> write_demo_config(Path(tempfile.mkdtemp()), count=2).name
    'demo.yaml'
    """
    demo_dir = Path(demo_dir)
    generate_demo_dataset(demo_dir / "data" / "shapes", count=count)
    (demo_dir / "tfrecords" / "shapes_trainval").mkdir(parents=True, exist_ok=True)
    (demo_dir / "pretrained" / "resnet18").mkdir(parents=True, exist_ok=True)
    config = {
        "model_app_name": "shapes",
        "num_epochs": epochs,
        "spec": str(SPECS_DIR / "demo_train_resnet18.txt"),
        "dataset_convert_spec": str(SPECS_DIR / "demo_tfrecords.txt"),
        "training_data": {"location": "data/shapes", "spec_reference": "/workspace/tao-experiments/data/shapes"},
        "training_tfrecords": {
            "location": "tfrecords/shapes_trainval",
            "spec_reference": "/workspace/tao-experiments/data/tfrecords/shapes_trainval",
        },
        "base_model": {
            "location": "pretrained/resnet18",
            "spec_reference": "/workspace/tao-experiments/pretrained/resnet18",
        },
        "output": "models",
        "model_subfolder": "demo-run",
        "model_name": "shapes_detector",
        "docker_gpus": docker_gpus,
    }
    if image:
        config["image"] = image
    path = demo_dir / "demo.yaml"
    header = (
        "# taoflow demo job (written by `taoflow demo`). Paths are relative to this file.\n"
        "# Put NVIDIA's pretrained DetectNet_v2 ResNet-18 at pretrained/resnet18/resnet18.hdf5 to train for real.\n"
    )
    path.write_text(header + yaml.safe_dump(config, sort_keys=False))
    return path


def demo_inputs(root: Path, *, count: int = 4):
    """A demo job staged under `root` (a few generated images): (request, its staged inputs), as the
    flow has them after staging; the examples of the job's functions start from it.

    >>> import tempfile
    >>> request, staged = demo_inputs(Path(tempfile.mkdtemp()))
    >>> request.model_app_name, sorted(staged)
    ('shapes', ['base_model', 'dataset_convert_spec', 'spec', 'training_data', 'training_tfrecords'])
    """
    from tasks.job.config import load_config
    from tasks.job.preflight import input_locations
    from tasks.job.workspace import Workspace, stage_input

    request = load_config(write_demo_config(root / "demo", count=count)).request
    workspace = Workspace(root / "home")
    return request, {name: stage_input(name, loc, workspace) for name, loc in input_locations(request).items()}

