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
from typing import Callable

from tasks.storage import StorageAccess, parse_location, sync_down
from tasks.storage.manifest import SyncManifest
from tasks.storage.sync import listing_fingerprint
from tasks.storage.transfer import ProgressFn

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
    not_followed: tuple[str, ...] = ()
    """Local symlinks and special files in the input that were left out (never read)."""


def stage_input(
    name: str,
    location: str,
    workspace: Workspace,
    access: StorageAccess | None = None,
    notice: Callable[[str], None] | None = None,
    on_progress: ProgressFn | None = None,
) -> StagedInput:
    """Make one input local: remote data synced into the cache (changes only), local data in place.

    Two runs staging the same location share its cache folder: the second waits for the first's
    sync, then finds everything current. The fingerprint is computed here, from the listing the
    staging makes anyway, so nothing contacts storage again for it.

    >>> import tempfile
    >>> data = Path(tempfile.mkdtemp())
    >>> staged = stage_input("training_data", str(data), Workspace(Path(tempfile.mkdtemp())))
    >>> staged.remote, staged.path == data
    (False, True)
    """
    loc = parse_location(location)
    if loc.kind == "local":
        fingerprint, skipped = listing_fingerprint(loc, access)
        if skipped and notice is not None:
            notice(f"{name}: {len(skipped)} symlink(s)/special file(s) in {loc.display} are not followed: "
                   + ", ".join(skipped[:10]))
        return StagedInput(name, loc.display, loc.path, fingerprint, remote=False, not_followed=skipped)
    dest = workspace.input_dir(location)
    report = sync_down(loc, dest, access=access, notice=notice, on_progress=on_progress)
    path = dest
    if report.single_file:
        path = dest / next(iter(SyncManifest.load(dest).files))
    return StagedInput(name, loc.display, path, report.fingerprint, True, report.bytes_transferred)
