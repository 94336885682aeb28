"""Build the stand-in TAO images: Debian's static busybox plus the `detectnet_v2` doubles.

Two images, as in reality: TAO's TF1 image (train, dataset_convert, evaluate, prune, export) and the
TAO Deploy image (gen_trt_engine), whose `detectnet_v2` is another wrapper with other endings
(`tests/standin/deploy_traces/`). The rootfs is assembled in memory and handed to the engine as
`docker import` does, so no registry (and no network) is needed. The tag carries a hash of the
scripts and of busybox, so an image is rebuilt only when one of them changes.
"""

from __future__ import annotations

import hashlib
import io
import posixpath
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

STANDIN_DIR = Path(__file__).resolve().parent
REPOSITORY = "taoflow-standin-tao"
BUSYBOX = Path("/bin/busybox")
#: In-image location of the sub-task scripts; "detectnet_v2/scripts/train" in the trainer's
#: command line is what a graceful stop looks for, as with TAO's .../detectnet_v2/scripts/train.py.
SCRIPTS_IN_IMAGE = "/opt/nvidia_tao_tf1/cv/detectnet_v2/scripts"
#: The awk the scripts share (the spec reader, the converter), found as `$(dirname "$0")/../lib`.
LIB_IN_IMAGE = "/opt/nvidia_tao_tf1/cv/detectnet_v2/lib"
# (source relative to tests/standin, destination in the image)
FILES = (
    ("bin/detectnet_v2", "/usr/local/bin/detectnet_v2"),
    ("bin/pkill", "/usr/local/bin/pkill"),
    ("detectnet_v2/scripts/train", f"{SCRIPTS_IN_IMAGE}/train"),
    ("detectnet_v2/scripts/dataset_convert", f"{SCRIPTS_IN_IMAGE}/dataset_convert"),
    ("detectnet_v2/scripts/evaluate", f"{SCRIPTS_IN_IMAGE}/evaluate"),
    ("detectnet_v2/scripts/prune", f"{SCRIPTS_IN_IMAGE}/prune"),
    ("detectnet_v2/scripts/export", f"{SCRIPTS_IN_IMAGE}/export"),
    ("detectnet_v2/lib/spec_fields.awk", f"{LIB_IN_IMAGE}/spec_fields.awk"),
    ("detectnet_v2/lib/kitti_convert.awk", f"{LIB_IN_IMAGE}/kitti_convert.awk"),
    ("detectnet_v2/lib/count_records.awk", f"{LIB_IN_IMAGE}/count_records.awk"),
)
CHANGES = [
    "ENV PATH=/usr/local/bin:/usr/bin:/bin",
    f"ENV TAO_STANDIN_SCRIPTS={SCRIPTS_IN_IMAGE}",
    "ENV HOME=/tmp",
    "WORKDIR /workspace",
    'CMD ["/bin/sh"]',
]
DEPLOY_SCRIPTS_IN_IMAGE = "/opt/nvidia_tao_deploy/cv/detectnet_v2/scripts"
DEPLOY_FILES = (
    ("bin/detectnet_v2_deploy", "/usr/local/bin/detectnet_v2"),
    ("bin/pkill", "/usr/local/bin/pkill"),
    ("tao_deploy/scripts/gen_trt_engine", f"{DEPLOY_SCRIPTS_IN_IMAGE}/gen_trt_engine"),
    ("detectnet_v2/lib/spec_fields.awk", "/opt/nvidia_tao_deploy/cv/detectnet_v2/lib/spec_fields.awk"),
)


@dataclass(frozen=True)
class Variant:
    """One stand-in image: its repository, its files and its environment."""

    repository: str
    files: tuple[tuple[str, str], ...]
    changes: tuple[str, ...]
    scripts_in_image: str


TAO = Variant(REPOSITORY, FILES, tuple(CHANGES), SCRIPTS_IN_IMAGE)
TAO_DEPLOY = Variant("taoflow-standin-tao-deploy", DEPLOY_FILES, (
    "ENV PATH=/usr/local/bin:/usr/bin:/bin", f"ENV TAO_STANDIN_DEPLOY_SCRIPTS={DEPLOY_SCRIPTS_IN_IMAGE}",
    "ENV HOME=/tmp", "WORKDIR /workspace", 'CMD ["/bin/sh"]'), DEPLOY_SCRIPTS_IN_IMAGE)


def standin_executable() -> Path:
    """The `detectnet_v2` double on the host, for launchers that run it as a plain process."""
    return STANDIN_DIR / "bin" / "detectnet_v2"


def standin_deploy_executable() -> Path:
    """TAO Deploy's `detectnet_v2` double on the host (gen_trt_engine), for the process launcher."""
    return STANDIN_DIR / "bin" / "detectnet_v2_deploy"


def image_tag(variant: Variant = TAO) -> str:
    digest = hashlib.sha256()
    for source, destination in variant.files:
        digest.update(destination.encode() + b"\0" + (STANDIN_DIR / source).read_bytes())
    digest.update(BUSYBOX.read_bytes())
    digest.update("\n".join(variant.changes).encode())
    return f"{variant.repository}:{digest.hexdigest()[:16]}"


def _applets() -> list[str]:
    out = subprocess.run([str(BUSYBOX), "--list"], check=True, capture_output=True, text=True).stdout
    return [name for name in out.split() if name and name != "busybox"]


def rootfs_tar(variant: Variant = TAO) -> bytes:
    """A minimal rootfs: busybox with one symlink per applet, the doubles, writable /tmp."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:

        def add_dir(path: str, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(path.lstrip("/"))
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)

        def add_file(path: str, data: bytes, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))

        base = ("/bin", "/usr", "/usr/bin", "/usr/local", "/usr/local/bin", "/etc", "/proc", "/sys", "/dev",
                "/workspace")
        parents = set()  # every folder the doubles land in (scripts, their shared lib), with its parents
        for folder in [variant.scripts_in_image] + [posixpath.dirname(d) for _, d in variant.files]:
            while folder not in ("/", "") and folder not in base:
                parents.add(folder)
                folder = posixpath.dirname(folder)
        for directory in (*base, *sorted(parents)):  # sorted: a folder before its sub-folders
            add_dir(directory)
        add_dir("/tmp", 0o1777)
        add_file("/bin/busybox", BUSYBOX.read_bytes())
        for applet in _applets():
            if applet in {"pkill"}:
                continue
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        add_file("/etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o644)
        add_file("/etc/group", b"root:x:0:\n", 0o644)
        for source, destination in variant.files:
            add_file(destination, (STANDIN_DIR / source).read_bytes())
    return buffer.getvalue()


def ensure_image(client, variant: Variant = TAO) -> str:
    """The stand-in image's tag, importing it into the engine if this version is absent."""
    import docker.errors

    tag = image_tag(variant)
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    repository, version = tag.split(":")
    client.api.import_image_from_data(rootfs_tar(variant), repository=repository, tag=version,
                                      changes=list(variant.changes))
    client.images.get(tag)  # raises if the import silently failed
    return tag
