"""Shared helpers for the storage tests: build trees in Azurite or on disk, read them back."""

from __future__ import annotations

import os
import random
from pathlib import Path

from tasks.storage import StorageAccess
from tasks.storage.manifest import SYNC_MANIFEST


def nested_tree(seed: int = 7, files: int = 24) -> dict[str, bytes]:
    """A tree with several depths, an empty file, a few KB to ~300 KB files and a non-ASCII name."""
    rng = random.Random(seed)
    tree = {
        "images/000001.png": rng.randbytes(300_000),
        "labels/000001.txt": b"car 0.00 0 0.0 1 2 3 4 0 0 0 0 0 0 0\n",
        "empty.txt": b"",
        "deep/a/b/c/d/leaf.bin": rng.randbytes(4096),
        "caf\u00e9/na\u00efve file.txt": "unicode name".encode(),
    }
    for i in range(files - len(tree)):
        tree[f"images/sub{i % 3}/{i:06d}.jpg"] = rng.randbytes(rng.randint(1_000, 60_000))
    return tree


def upload_tree(container, prefix: str, tree: dict[str, bytes]) -> None:
    for name, data in tree.items():
        container.upload_blob(f"{prefix}/{name}" if prefix else name, data, overwrite=True)


def write_tree(root: Path, tree: dict[str, bytes]) -> None:
    for name, data in tree.items():
        path = root.joinpath(*name.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def read_tree(root: Path, skip: frozenset[str] = frozenset()) -> dict[str, bytes]:
    """Every file under root, except the sync's own manifest and the top-level names in skip.

    Skipped folders are pruned before they are listed: a sync still running renames its staged
    files out of them, so reading one there races with that rename.
    """
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) == root:
            dirnames[:] = [d for d in dirnames if d not in skip]
            filenames = [f for f in filenames if f not in skip]
        for filename in filenames:
            path = Path(dirpath, filename)
            name = path.relative_to(root).as_posix()
            if name != SYNC_MANIFEST:
                found[name] = path.read_bytes()
    return found


def blob_tree(container, prefix: str) -> dict[str, bytes]:
    head = f"{prefix}/" if prefix else ""
    return {
        b.name[len(head):]: container.download_blob(b.name).readall()
        for b in container.list_blobs(name_starts_with=head or None)
    }


def location_of(azurite, container, prefix: str = "") -> str:
    """The Azurite path-style URL of a prefix (the form a user copies from Storage Explorer)."""
    url = f"{azurite.blob_endpoint}/{container.container_name}"
    return f"{url}/{prefix}" if prefix else url


def access_for(azurite, retries: int = 1) -> StorageAccess:
    return StorageAccess(connection_string=azurite.connection_string, sdk_retries=retries)
