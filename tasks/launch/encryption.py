"""When TAO needs its key (`-k`), so that it is in no argv where it is not.

TAO 5 writes unencrypted models and checkpoints: `-k` only decrypts a `.tlt` pretrained model and a
`.ckzip` written by TAO before 5.0 (`tao-source-facts.md` §2, `model/utilities.py`). Images older
than TAO 5 encrypt what they write, so they always get it. Everywhere else the key would only be
one more place a secret can be read from (`docker inspect`, `ps` on the host).
"""

from __future__ import annotations

import re
from pathlib import Path

from tasks.launch.results import checkpoints, read_untrusted

#: A zip file starts with a local file header or, when empty, the end-of-central-directory record.
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_IMAGE_MAJOR = re.compile(r":v?(\d+)\.\d+")


def image_major_version(image: str) -> int | None:
    """The TAO release an image tag names, when it names one.

    >>> image_major_version("nvcr.io/nvidia/tao/tao-toolkit:5.0.0-tf1.15.5")
    5
    >>> image_major_version("nvcr.io/nvidia/tao/tao-toolkit-tf:v3.21.11-tf1.15.5-py3"), image_major_version("tao:latest")
    (3, None)
    """
    match = _IMAGE_MAJOR.search(image.rsplit("/", 1)[-1])
    return int(match.group(1)) if match else None


def key_reason(pretrained_model_file: str | None, results: Path | None, image: str) -> str | None:
    """Why TAO needs `-k` for this training, or None when it does not.

    >>> key_reason("/workspace/pretrained/resnet18.hdf5", None, "nvcr.io/nvidia/tao/tao-toolkit:5.0.0-tf1.15.5") is None
    True
    >>> key_reason("/workspace/pretrained/resnet18.tlt", None, "tao:5.0.0")
    'the pretrained model resnet18.tlt is encrypted'
    """
    major = image_major_version(image)
    if major is not None and major < 5:
        return f"the image is TAO {major}, which encrypts the models it writes"
    if pretrained_model_file and pretrained_model_file.lower().endswith((".tlt", ".etlt")):
        return f"the pretrained model {Path(pretrained_model_file).name} is encrypted"
    found = checkpoints(results) if results is not None else []
    if found:  # TAO resumes from the newest one
        head = read_untrusted(found[-1], limit=4)
        if head is not None and head.data not in _ZIP_MAGIC:
            return f"{found[-1].name} was written encrypted (by TAO before 5.0) and training resumes from it"
    return None
