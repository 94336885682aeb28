"""The champion's model, staged for `evaluate` like any input and trusted no more than one.

A registry is untrusted input. A champion whose version folder (or its `weights/`) was a symlink
used to be evaluated in place: the evaluator read a host folder outside the registry, and with
the Docker launcher the read-only mount pointed at the link's target. Now the model file is:

- found through the registry's own folder (`OUTPUT/MODEL_APP_NAME`), never through a link: every
  path component is opened with `O_NOFOLLOW` (tasks.storage.localfs), and a blob has none;
- taken only from a published version holding its card: the publication marker must list both
  `model-card.json` and the model file, and the card must read as one;
- copied into the workspace's content cache (`TAOFLOW_HOME/content/<MD5>/<file>`) and checked
  against the MD5 the marker lists, so the evaluator mounts a folder that holds that file alone,
  with exactly the bytes that were published. Two runs staging the same champion write the same
  bytes and each renames its copy into place whole.

Any refusal is a `StorageError`: "the champion cannot be evaluated", which blocks the promotion
and not the publication of the new model (tasks.registry.registry_tasks).
"""

from __future__ import annotations

import re
import stat
from pathlib import Path, PurePosixPath

from tasks.errors import StorageError, StorageNotFoundError
from tasks.job.workspace import Workspace
from tasks.registry.card import CARD_FILE
from tasks.registry.catalog import ChampionPointer, version_card
from tasks.storage import StorageAccess, open_store, parse_location
from tasks.storage.localfs import LocalTree
from tasks.storage.manifest import MAX_MARKER_BYTES, PUBLISHED_MARKER, parse_published
from tasks.storage.names import name_problem
from tasks.storage.stores import Entry, Store, stream_md5

#: The marker's MD5 names the cache folder: 32 hex digits and nothing else.
_MD5 = re.compile(r"[0-9a-f]{32}")
_FIX = "promote a version published by a taoflow run (taoflow models list), or publish this one again"


def stage_champion_model(app: str, champion: ChampionPointer, workspace: Workspace,
                         access: StorageAccess | None = None) -> Path:
    """The champion's model file, local and checked, for `evaluate` (see the module doc):
    `TAOFLOW_HOME/content/<MD5>/<file>`."""
    where = parse_location(app).display
    version, model = _names(champion, where)
    store = open_store(app, access)
    files = _published(store, version, where)
    version_card(store, version, where)
    if CARD_FILE not in files:
        raise StorageNotFoundError(f"the champion's version {version!r} was published without its {CARD_FILE}",
                                   where=where, fix=_FIX)
    if model not in files:
        raise StorageNotFoundError(f"the champion's model {model} is not among the files version {version!r} "
                                   f"published ({PUBLISHED_MARKER})", where=where, fix=_FIX)
    size, md5 = files[model]
    if not _MD5.fullmatch(md5):
        raise StorageError(f"the {PUBLISHED_MARKER} of the champion's version {version!r} is damaged (the MD5 of "
                           f"{model} is not 32 hex digits)", where=where, fix=_FIX)
    entry = store.entry(f"{version}/{model}")
    if entry is None:
        raise _gone(f"{version}/{model}", where)
    if entry.size != size:
        raise _changed(entry.name, f"{entry.size:,} bytes, the publication marker says {size:,}", where)
    return _cached(workspace, md5, entry.name) or _fetch(store, entry, md5, workspace, where)


def _gone(name: str, where: str) -> StorageNotFoundError:
    return StorageNotFoundError(f"the champion's model {name} is no longer in its version folder", where=where,
                                fix=_FIX)


def _changed(name: str, how: str, where: str) -> StorageError:
    return StorageError(f"the champion's model {name} is not the file its version published ({how})", where=where,
                        fix=_FIX)


def _names(champion: ChampionPointer, where: str) -> tuple[str, str]:
    """(version folder, model path inside it) from the pointer, both names that stay inside."""
    version, _, model = champion.model.partition("/")
    if version != champion.version or "/" in version or name_problem(version) or name_problem(model):
        raise StorageError(f"champion.json names the model {champion.model!r}, which is not a file inside the "
                           f"champion's version folder {champion.version!r}", where=where,
                           fix="restore champion.json from the model cards (taoflow models list)")
    return version, model


def _published(store: Store, version: str, where: str) -> dict[str, tuple[int, str]]:
    data = store.read(f"{version}/{PUBLISHED_MARKER}", MAX_MARKER_BYTES)
    if data is None:
        raise StorageNotFoundError(f"the champion's version {version!r} is not published (no {PUBLISHED_MARKER})",
                                   where=where, fix=_FIX)
    files = parse_published(data)
    if files is None:
        raise StorageError(f"the {PUBLISHED_MARKER} of the champion's version {version!r} is damaged", where=where,
                           fix=_FIX)
    return files


def _cache(workspace: Workspace) -> LocalTree:
    root = workspace.root / "content"
    root.mkdir(parents=True, exist_ok=True)
    return LocalTree(root)


def _cached(workspace: Workspace, md5: str, model: str) -> Path | None:
    """The cached copy when it is a regular file with exactly those bytes."""
    tree, name = _cache(workspace), f"{md5}/{PurePosixPath(model).name}"
    found = tree.lstat(name)
    if found is None or not stat.S_ISREG(found.st_mode):
        return None
    with tree.open_read(name) as handle:
        return tree.root / name if stream_md5(handle) == md5 else None


def _fetch(store: Store, entry: Entry, md5: str, workspace: Workspace, where: str) -> Path:
    def copy(_source, out) -> str:
        try:
            got = store.fetch(entry, out)
        except FileNotFoundError:  # removed since it was found
            raise _gone(entry.name, where) from None
        if got != md5:  # raised before the rename: nothing is placed
            raise _changed(entry.name, f"MD5 {got}, the publication marker says {md5}", where)
        return got

    name = f"{md5}/{PurePosixPath(entry.name).name}"
    tree = _cache(workspace)
    tree.write_from(name, None, copy)
    return tree.root / name
