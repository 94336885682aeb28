"""What a model card says about each step's artifact (the trained and pruned `.hdf5`, the `.onnx`,
the engine, the calibration cache): its size and SHA-256, read from the file itself, and the
parameter count TAO reported for it.

The file sits in a folder a container wrote: it is opened without following a link and without
blocking on a FIFO, and must turn out to be a regular file (`tasks.files`), as taoflow reads
everything there.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from tasks.errors import LaunchError
from tasks.files import NotRegular, describe, open_regular

_CHUNK = 1 << 20


@dataclass(frozen=True)
class ArtifactFacts:
    """One artifact, for the card: name, bytes, SHA-256 and TAO's parameter count (millions)."""

    name: str
    size_bytes: int
    sha256: str
    param_count: float | None = None

    @property
    def size_mb(self) -> float:
        """Bytes / 2**20, TAO's `size` (`cv/common/utils.py: get_model_file_size`)."""
        return self.size_bytes / (1 << 20)

    def to_dict(self) -> dict:
        return asdict(self) | {"size_mb": self.size_mb}


def artifact_facts(path: Path, *, param_count: float | None = None) -> ArtifactFacts:
    """Size and SHA-256 of the regular file at `path` itself (never a link's target).

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> (folder / "model.onnx").write_bytes(b"onnx")
    4
    >>> facts = artifact_facts(folder / "model.onnx", param_count=3.212519)
    >>> facts.size_bytes, facts.sha256[:12], facts.param_count
    (4, '87e93f89f2be', 3.212519)
    """
    try:
        fd, _ = open_regular(str(path))
    except NotRegular as exc:
        raise LaunchError(f"{path.name} is a {describe(exc.kind)}, not the file the step wrote; taoflow does not "
                          "follow what a container leaves behind", where=str(path),
                          fix="remove it and run the step again") from None
    except FileNotFoundError:
        raise LaunchError(f"{path.name} is not there", where=str(path), fix="run the step that writes it") from None
    digest, size = hashlib.sha256(), 0
    with os.fdopen(fd, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return ArtifactFacts(path.name, size, digest.hexdigest(), param_count)
