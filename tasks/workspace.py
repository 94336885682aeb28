"""Where a job's files live on the machine that runs it, and how inputs get there.

Remote inputs are synced into a cache keyed by their location (so a re-run transfers only what
changed); local inputs are used in place. Each run gets its own folder for the rewritten spec and
the results, named by the run id, so a retry of the same run finds its checkpoints.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from tasks.storage import StorageAccess, content_fingerprint, parse_location, sync_down
from tasks.storage.manifest import SyncManifest

HOME_ENV = "TAOFLOW_HOME"


@dataclass(frozen=True)
class Workspace:
    """The local root for cached inputs and per-run folders (env TAOFLOW_HOME, else ~/.cache/taoflow)."""

    root: Path

    @classmethod
    def default(cls) -> "Workspace":
        return cls(Path(os.environ.get(HOME_ENV) or Path.home() / ".cache" / "taoflow").expanduser())

    def input_dir(self, location: str) -> Path:
        # The SAS query changes with every token; the data behind it does not.
        stable = location.split("?", 1)[0]
        return self.root / "inputs" / hashlib.sha256(stable.encode()).hexdigest()[:16]

    def run_dir(self, run_id: str) -> Path:
        return self.root / "runs" / run_id


@dataclass(frozen=True)
class StagedInput:
    """An input available as a local path, with a fingerprint of its content."""

    name: str
    location: str  # display form: SAS tokens redacted
    path: Path
    fingerprint: str
    remote: bool
    bytes_transferred: int = 0

    def is_intact(self) -> bool:
        """Still there as staged (a cached result must not point at a cache someone emptied)."""
        if not self.path.exists():
            return False
        if not self.remote:
            return True
        root = self.path if self.path.is_dir() else self.path.parent
        return SyncManifest.load(root).files != {}


def stage_input(name: str, location: str, workspace: Workspace, access: StorageAccess | None = None) -> StagedInput:
    """Make one input local: remote data synced into the cache (changes only), local data in place."""
    loc = parse_location(location)
    if loc.kind == "local":
        fingerprint = content_fingerprint(loc, access)
        return StagedInput(name, loc.display, loc.path, fingerprint, remote=False)
    dest = workspace.input_dir(location)
    report = sync_down(loc, dest, access=access)
    path = dest
    if report.single_file:
        path = dest / next(iter(SyncManifest.load(dest).files))
    return StagedInput(name, loc.display, path, report.fingerprint, True, report.bytes_transferred)
