"""The two manifests of a sync.

- The **local sync manifest** (``.taoflow-sync.json`` inside a synced directory) remembers, per
  file, the blob's size/etag/MD5 and the local file's mtime when we wrote it. An unchanged blob
  whose local copy is untouched is skipped without transferring a byte.
- The **published marker** (``_taoflow_published.json`` at a results prefix) lists every file of
  a finished upload with its size and MD5. It is written last; readers trust only what it lists.
  ``_taoflow_publishing.json`` is written first and tells readers an upload is under way.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tasks.storage.stores import Entry

SYNC_MANIFEST = ".taoflow-sync.json"
STAGING_DIR = ".taoflow-sync-tmp"
PUBLISHED_MARKER = "_taoflow_published.json"
PUBLISHING_MARKER = "_taoflow_publishing.json"
#: Names a sync owns; a blob with one of these names is never written over them.
RESERVED_LOCAL = {SYNC_MANIFEST, STAGING_DIR}
MARKERS = {PUBLISHED_MARKER, PUBLISHING_MARKER}


@dataclass
class LocalRecord:
    size: int
    etag: str
    md5: str | None
    mtime_ns: int


@dataclass
class SyncManifest:
    source: str = ""
    files: dict[str, LocalRecord] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: Path) -> "SyncManifest":
        path = directory / SYNC_MANIFEST
        try:
            data = json.loads(path.read_text())
            return cls(data.get("source", ""), {k: LocalRecord(**v) for k, v in data.get("files", {}).items()})
        except (OSError, ValueError, TypeError):
            # Missing or damaged: forget it; the cost is a full re-download, never a wrong file.
            return cls()

    def save(self, directory: Path) -> None:
        path = directory / SYNC_MANIFEST
        temp = path.with_suffix(".tmp")
        data = {"version": 1, "source": self.source, "files": {k: asdict(v) for k, v in sorted(self.files.items())}}
        temp.write_text(json.dumps(data, indent=1))
        os.replace(temp, path)

    def is_current(self, entry: Entry, local: Path) -> bool:
        """True when `local` is exactly what we wrote for this version of the blob."""
        record = self.files.get(entry.name)
        if record is None or record.etag != entry.etag or record.size != entry.size:
            return False
        try:
            stat = local.stat()
        except OSError:
            return False
        return stat.st_size == record.size and stat.st_mtime_ns == record.mtime_ns


def published_document(files: dict[str, tuple[int, str]]) -> bytes:
    """The content of the published marker for `files` {name: (size, md5)}."""
    body = {
        "version": 1,
        "published_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "files": {name: {"size": size, "md5": md5} for name, (size, md5) in sorted(files.items())},
    }
    return json.dumps(body, indent=1).encode()


def parse_published(data: bytes) -> dict[str, tuple[int, str]] | None:
    """{name: (size, md5)} from a published marker, or None if it is damaged."""
    try:
        files = json.loads(data)["files"]
        return {name: (int(v["size"]), str(v["md5"])) for name, v in files.items()}
    except (ValueError, KeyError, TypeError):
        return None


def fingerprint(entries: dict[str, Entry]) -> str:
    """A stable hash of a listing (names, sizes, MD5s or etags): equal iff the content is unchanged."""
    digest = hashlib.sha256()
    for name in sorted(entries):
        entry = entries[name]
        digest.update(f"{name}\0{entry.size}\0{entry.md5 or entry.etag}\n".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()
