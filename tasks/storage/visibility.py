"""What a reader of a location may see: published folders only, and names that are safe as paths."""

from __future__ import annotations

from dataclasses import replace

from tasks.errors import Problem, StorageError, StorageNotFoundError
from tasks.storage.manifest import (
    MARKERS,
    MAX_MARKER_BYTES,
    PUBLISHED_MARKER,
    PUBLISHING_MARKER,
    RESERVED_LOCAL,
    parse_published,
)
from tasks.storage.names import name_problem, printable
from tasks.storage.stores import Entry, Listing, Store
from tasks.storage.transfer import NoticeFn


def _marker_dirs(entries: dict[str, Entry]) -> dict[str, set[str]]:
    """{folder ("" = the root): marker names in it}."""
    found: dict[str, set[str]] = {}
    for name in entries:
        folder, _, base = name.rpartition("/")
        if base in MARKERS:
            found.setdefault(folder, set()).add(base)
    return found


def readable_entries(store: Store, entries: dict[str, Entry], *, require_published: bool = False):
    """The entries a reader may use, whether the root is published, and the folders ignored.

    A folder with a published marker contributes exactly the files the marker lists (with its
    MD5s); a folder with only the "publishing" marker is half-published and is ignored, or
    refused when it is the location itself.
    """
    where = store.location.display
    markers = _marker_dirs(entries)
    root = markers.get("", set())
    if PUBLISHING_MARKER in root and PUBLISHED_MARKER not in root:
        raise StorageNotFoundError(
            "these results are not published: an upload is under way or was interrupted",
            where=where,
            fix="wait for the upload to finish, or re-run the step that publishes them (it resumes)",
        )
    if require_published and PUBLISHED_MARKER not in root:
        raise StorageNotFoundError(
            f"no {PUBLISHED_MARKER} here, so these are not published results",
            where=where,
            fix="point at a results folder written by `taoflow sync up` (or the train flow)",
        )
    readable = {n: e for n, e in entries.items() if n.rpartition("/")[2] not in MARKERS}
    ignored = []
    for folder, names in sorted(markers.items()):
        head = f"{folder}/" if folder else ""
        inside = {n for n in readable if n.startswith(head)}
        if PUBLISHED_MARKER in names:
            doc = parse_published(store.read(head + PUBLISHED_MARKER, MAX_MARKER_BYTES) or b"")
            if doc is None:
                raise StorageError(f"the marker {head}{PUBLISHED_MARKER} is damaged", where=where,
                                   fix="re-run the publishing step")
            listed = {head + n: v for n, v in doc.items()}
            missing = [n for n, (size, _) in listed.items() if n not in readable or readable[n].size != size]
            if missing:
                raise StorageError(
                    f"the published marker lists {len(missing)} file(s) that are missing or differ, e.g. {missing[0]}",
                    where=where,
                    fix="re-run the publishing step",
                )
            for name in inside - listed.keys():
                readable.pop(name)
            for name, (_, md5) in listed.items():
                readable[name] = replace(readable[name], md5=md5)
        else:
            ignored.append(folder or ".")
            for name in inside:
                readable.pop(name)
    return readable, PUBLISHED_MARKER in root, tuple(ignored)


def check_names(entries: dict[str, Entry], where: str) -> None:
    """Refuse, before anything is written, names that would escape the target or collide."""
    problems = []
    names = set(entries)
    # Names that are also folders of other names: almost always none, then no per-name search.
    both = names & {name[:i] for name in names for i, ch in enumerate(name) if ch == "/"}
    for name in sorted(names):
        why = name_problem(name)
        if why is None and name.split("/", 1)[0] in RESERVED_LOCAL:
            why = "the name is reserved for taoflow's sync bookkeeping"
        if why is None and both and any(name[: i] in both for i in range(len(name)) if name[i] == "/"):
            why = "a parent of this name is also a blob, so it would be both a file and a folder"
        if why is not None:
            problems.append(Problem("unsafe-blob-name", f"{printable(name)}: {why}", hint="rename or delete the blob"))
    if problems:
        raise StorageError(
            f"{len(problems)} blob name(s) cannot be written safely under the target; nothing was downloaded",
            where=where,
            problems=problems[:20],
            fix="rename or delete those blobs (names must be relative paths without '..', '\\', NUL or control characters)",
        )


def not_followed(listing: Listing, notice: NoticeFn | None) -> tuple[str, ...]:
    """The listing's local symlinks and special files as text, told once to `notice`.

    >>> not_followed(Listing({}), print)
    ()
    """
    items = tuple(item.render() for item in listing.not_followed)
    if items and notice is not None:
        shown = ", ".join(items[:10]) + (f", ... ({len(items) - 10} more)" if len(items) > 10 else "")
        notice(f"{len(items)} symlink(s)/special file(s) not followed and not transferred "
               f"(taoflow never reads through them): {shown}")
    return items
