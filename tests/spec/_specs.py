"""The real public spec files used as test inputs (read in place, never copied into the project)."""

from __future__ import annotations

from pathlib import Path

from tests.fixtures.services import service_missing

SPECS = (Path(__file__).resolve().parents[2] / "../shared/reference/specs").resolve()

TRAIN_CLEAN = (
    "tao_tutorials_5.5__detectnet_v2_train_resnet18_kitti.txt",
    "tao_tutorials_5.5__detectnet_v2_retrain_resnet18_kitti.txt",
    "tao_tf1_backend__experiment_specs_default_spec.txt",
)
CONVERT_CLEAN = (
    "tao_tutorials_5.5__detectnet_v2_tfrecords_kitti_trainval.txt",
    "tao_tf1_backend__dataio_kitti_spec_sequence.txt",
    "tao_tf1_backend__dataio_kitti_random_split.txt",
    "nvidia-ai-iot_face-mask-detection__detectnet_v2_tfrecords_kitti_trainval.txt",
)
FACE_MASK_TRAIN = "nvidia-ai-iot_face-mask-detection__detectnet_v2_train_resnet18_kitti.txt"
ALL = TRAIN_CLEAN + CONVERT_CLEAN + (FACE_MASK_TRAIN,)


def spec_path(name: str) -> Path:
    path = SPECS / name
    if not path.is_file():
        service_missing(f"the reference spec {path} (../shared beside the checkout)")
    return path


def spec_bytes(name: str) -> bytes:
    return spec_path(name).read_bytes()


def spec_text(name: str) -> str:
    return spec_bytes(name).decode("utf-8")


def kind_of(name: str) -> str:
    return "dataset_convert" if name in CONVERT_CLEAN else "train"
