"""The results folder (-r): stable per run, marked with its run id, owned by the job's user.

TAO resumes from any `.ckzip` it finds in -r. That is what a retry of the same run wants,
and exactly what a *new* run must not do silently: a marker file names the run that owns
the folder, and a different run is refused unless it asks to resume.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from tasks.errors import LaunchError

RUN_MARKER = ".taoflow-run-id"
_CHECKPOINT = re.compile(r"^model\.epoch-(\d+)\.ckzip$")


def checkpoints(results: Path) -> list[Path]:
    """The `model.epoch-<E>.ckzip` files, oldest epoch first."""
    if not results.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in results.iterdir() if (m := _CHECKPOINT.match(p.name))]
    return [p for _, p in sorted(found)]


def prepare_results(results: Path, *, run_id: str, resume: bool = False, user: str | None = None) -> None:
    """Create the folder, refuse another run's checkpoints, mark it ours, hand it to `user`."""
    results.mkdir(parents=True, exist_ok=True)
    marker = results / RUN_MARKER
    owner = marker.read_text().strip() if marker.exists() else None
    existing = checkpoints(results)
    if existing and owner != run_id and not resume:
        raise LaunchError(
            f"the results folder already holds {len(existing)} checkpoint(s) "
            f"(newest {existing[-1].name}) from {'run ' + owner if owner else 'an unknown run'}",
            where=str(results),
            fix="use an empty results folder (a new model_subfolder) for a new experiment, "
            "or set resume=True to continue training from those checkpoints",
        )
    marker.write_text(run_id + "\n")
    _hand_over(results, user)


def _hand_over(results: Path, user: str | None) -> None:
    # Only root can (and needs to) give the folder to the container's user; others own it already.
    if os.geteuid() != 0 or not user:
        return
    uid_text, _, gid_text = user.partition(":")
    if not uid_text.isdigit():
        return  # a user name: the engine resolves it inside the image, we cannot here
    uid, gid = int(uid_text), int(gid_text) if gid_text.isdigit() else -1
    for path in [results, *results.rglob("*")]:
        os.chown(path, uid, gid, follow_symlinks=False)
