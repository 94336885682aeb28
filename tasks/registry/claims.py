"""A version folder belongs to one run: its claim, made before the run's first container.

`OUTPUT/MODEL_APP_NAME/VERSION/_taoflow_claim.json` names the run that owns the folder. It is
created exclusively (a blob with `If-None-Match: *`, a local hard link that cannot replace) and
never rewritten, so of two runs aimed at one folder in the same second exactly one gets it; the
other stops before it starts a container, saying whose folder it is. A retry of the owning run
(or its `resume: true`) finds its own claim and goes on; nothing lets a run take another's folder.

Before publishing, the run reads its claim again and refuses a folder whose published model
(`_taoflow_published.json`, with the run id the results folder carries) is another run's: a
folder published before claims existed, or whose claim was removed by hand.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from datetime import datetime, timezone

from tasks.bounded_json import load_bounded
from tasks.errors import FolderClaimed
from tasks.launch.results import RUN_MARKER
from tasks.registry.card import CARD_FILE, MAX_CARD_BYTES
from tasks.storage import StorageAccess, open_store, parse_location
from tasks.storage.manifest import MAX_MARKER_BYTES, PUBLISHED_MARKER

CLAIM_FILE = "_taoflow_claim.json"
CLAIM_FORMAT = "taoflow.claim/1"
#: A claim is a few hundred bytes; anything longer was not written by taoflow.
_CLAIM_LIMIT = 64 * 1024
#: Claims and cards nest a few levels; a far deeper document is not one (and would exhaust the parser).
_JSON_DEPTH = 32


@dataclass(frozen=True)
class Claim:
    """Who owns a version folder, and since when."""

    run_id: str
    claimed_at: str
    host: str

    def to_json(self) -> bytes:
        return json.dumps({"format": CLAIM_FORMAT, "run_id": self.run_id, "claimed_at": self.claimed_at,
                           "host": self.host}, indent=2).encode() + b"\n"

    @classmethod
    def parse(cls, data: bytes) -> "Claim | None":
        try:
            doc = load_bounded(data[:_CLAIM_LIMIT], _JSON_DEPTH)
            return cls(str(doc["run_id"]), str(doc.get("claimed_at", "?")), str(doc.get("host", "?")))
        except (ValueError, TypeError, KeyError, AttributeError):
            return None


def claim_version(app: str, version: str, run_id: str, access: StorageAccess | None = None) -> Claim:
    """Make OUTPUT/MODEL_APP_NAME/`version` this run's, or find it already is (a retry); refuse it
    when another run owns it or published there.

    >>> import tempfile
    >>> app = tempfile.mkdtemp()
    >>> claim_version(app, "v1", "run-a").run_id, claim_version(app, "v1", "run-a").run_id
    ('run-a', 'run-a')
    """
    store = open_store(app, access)
    owner = _published_by(store, version)
    if owner is not None and owner != run_id:
        raise _published_elsewhere(app, version, owner)
    mine = Claim(run_id, datetime.now(timezone.utc).isoformat(timespec="seconds"), socket.gethostname())
    if store.create(f"{version}/{CLAIM_FILE}", mine.to_json()):
        return mine
    return check_claim(app, version, run_id, access)


def check_claim(app: str, version: str, run_id: str, access: StorageAccess | None = None) -> Claim:
    """The folder's claim, which must be this run's (before publishing, and for a retry).

    >>> import tempfile
    >>> app = tempfile.mkdtemp(); _ = claim_version(app, "v1", "run-a")
    >>> check_claim(app, "v1", "run-a").run_id
    'run-a'
    """
    store = open_store(app, access)
    data = store.read(f"{version}/{CLAIM_FILE}", _CLAIM_LIMIT)
    claim = Claim.parse(data) if data is not None else None
    if claim is None:
        raise FolderClaimed(
            f"model_subfolder {version!r} has {'no' if data is None else 'a damaged'} {CLAIM_FILE}, so it is not "
            "this run's to publish into",
            where=_display(app), fix="use a new model_subfolder (or subfolder_per_run: true)")
    if claim.run_id != run_id:
        raise FolderClaimed(
            f"model_subfolder {version!r} belongs to another run: {claim.run_id} (claimed {claim.claimed_at} on "
            f"{claim.host}); two runs never train, publish or promote into one folder",
            where=_display(app),
            fix="give this run its own model_subfolder, or subfolder_per_run: true (every run then gets "
                "<model_subfolder>-<start>-<run id>)")
    owner = _published_by(store, version)
    if owner is not None and owner != run_id:
        raise _published_elsewhere(app, version, owner)
    return claim


def _published_by(store, version: str) -> str | None:
    """The run whose model is published in `version` (None: nothing published there)."""
    if store.read(f"{version}/{PUBLISHED_MARKER}", MAX_MARKER_BYTES) is None:
        return None
    for name, limit in ((RUN_MARKER, _CLAIM_LIMIT), (CARD_FILE, MAX_CARD_BYTES)):
        data = store.read(f"{version}/{name}", limit)
        if data is None:
            continue
        if name == RUN_MARKER:
            return data[:256].decode("utf-8", "replace").strip() or "an unknown run"
        try:
            return str(load_bounded(data, _JSON_DEPTH)["run_id"])
        except (ValueError, TypeError, KeyError):
            break
    return "an unknown run"


def _published_elsewhere(app: str, version: str, owner: str) -> FolderClaimed:
    return FolderClaimed(
        f"model_subfolder {version!r} already holds a model published by {owner}; publishing this run there "
        "would replace that model's files",
        where=_display(app),
        fix="use a new model_subfolder for every run (or subfolder_per_run: true)")


def _display(app: str) -> str:
    return parse_location(app).display
