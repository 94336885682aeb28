"""Rewrite a spec's locations, epochs and chosen fields while keeping every other byte.

Edits are splices over the tokens of the concrete syntax tree: a changed value replaces only
its own literal, an added field is inserted in the indentation style of its block. Comments,
commented-out paths, spacing and quotes elsewhere stay exactly as the user wrote them.
"""

from __future__ import annotations

import difflib
import posixpath
from dataclasses import dataclass

from tasks.errors import Problem, SpecError
from tasks.spec.edits import Change, Edit, apply_edits, replace_scalar
from tasks.spec.overrides import override_edit
from tasks.spec.reading import Read, paths, read_document
from tasks.spec.schema import Schema, load_schema, walk
from tasks.spec.syntax import Document, Scalar, parse

__all__ = ["Change", "RewriteResult", "rebase_path", "rewrite_document"]


@dataclass(frozen=True)
class RewriteResult:
    text: str
    changes: list[Change]
    diff: str  # unified diff of original -> rewritten ("" when nothing changed)


def rebase_path(value: str, rebasings: dict[str, str]) -> tuple[str, str] | None:
    """(new value, matching reference) for `value`, or None when no reference is a path prefix of it.

    Matching is on whole path components after normalisation (`..`, `.`, doubled and trailing
    slashes), so `/data/train` matches `/data/train` and `/data/train/x/*`, never `/data/training`.
    The longest matching reference wins; a glob tail or trailing slash of the value is kept.

    >>> rebase_path("/data/train/images", {"/data/train": "/workspace/taoflow/data/training"})
    ('/workspace/taoflow/data/training/images', '/data/train')
    >>> rebase_path("/data/training", {"/data/train": "/x"}) is None
    True
    """
    if not value:
        return None
    norm = posixpath.normpath(value)
    best: tuple[str, str, str] | None = None
    for ref, actual in rebasings.items():
        ref_norm = posixpath.normpath(ref)
        if norm == ref_norm:
            rest = ""
        elif norm.startswith(ref_norm.rstrip("/") + "/"):
            rest = norm[len(ref_norm.rstrip("/")) :]
        else:
            continue
        if best is None or len(ref_norm) > len(posixpath.normpath(best[0])):
            best = (ref, actual, rest)
    if best is None:
        return None
    ref, actual, rest = best
    base = actual.rstrip("/") if actual.strip("/") else actual[:1]
    new = (base + rest) if base != "/" else ("/" + rest.lstrip("/"))
    if value.endswith("/") and not new.endswith("/"):
        new += "/"
    return new, ref


def rewrite_document(
    doc: Document,
    rebasings: dict[str, str] | None = None,
    num_epochs: int | None = None,
    overrides: dict[str, str] | None = None,
    schema: Schema | None = None,
) -> RewriteResult:
    """Rebase every path literal under a reference, then apply `num_epochs` and the overrides.

    Every occurrence of a path is rebased (also one TAO reads over); a reference counts as used
    only when it matches a path TAO reads, so a reference that only matches an overwritten value is
    still "unmatched".
    """
    schema = schema or load_schema()
    read_scalars = {id(r.scalar) for _, _, r in paths(read_document(doc, schema).root)
                    if isinstance(r, Read) and r.scalar is not None}
    edits: list[Edit] = []
    rebasings = dict(rebasings or {})
    for ref in rebasings:
        if not ref or not ref.strip():
            raise SpecError("a rebasing has an empty reference", fix="give the path written in the spec, e.g. /workspace/data")
    used: set[str] = set()
    path_values = []
    for b in walk(doc, schema):
        if not (b.schema.path and isinstance(b.value, Scalar) and b.value.kind == "string" and b.value.value is not None):
            continue
        path_values.append(b)
        hit = rebase_path(str(b.value.value), rebasings)
        if hit is None:
            continue
        new, ref = hit
        if id(b.value) in read_scalars:
            used.add(ref)
        edits.append(replace_scalar(doc, b.value, new, b.path, f"rebase {ref} -> {rebasings[ref]}", quote=True))
    unmatched = [ref for ref in rebasings if ref not in used]
    if unmatched:
        raise _unmatched_error(doc, unmatched, path_values)
    settings = dict(overrides or {})
    if num_epochs is not None:
        if isinstance(num_epochs, bool) or not isinstance(num_epochs, int) or num_epochs < 1:
            raise SpecError(f"num_epochs must be a whole number >= 1, got {num_epochs!r}", fix="e.g. num_epochs=5")
        settings.setdefault("training_config.num_epochs", str(num_epochs))
    for dotted, raw in settings.items():
        edits.append(override_edit(doc, schema, dotted, raw))
    text = apply_edits(doc, edits)
    try:
        parse(text, doc.file, doc.kind)
    except SpecError as exc:  # pragma: no cover - a bug in the rewrite, never in the input
        raise SpecError("the rewritten spec does not parse; this is a bug in taoflow", problems=exc.problems) from exc
    # git's a/ b/ prefixes, without doubling the slash of an absolute path.
    name = (doc.file or "spec").lstrip("/")
    diff = "".join(
        difflib.unified_diff(
            doc.text.splitlines(keepends=True), text.splitlines(keepends=True), f"a/{name}", f"b/{name}"
        )
    )
    changes = [e.change for e in sorted(edits, key=lambda e: e.start)]
    return RewriteResult(text, changes, diff)


def _unmatched_error(doc: Document, unmatched: list[str], path_values) -> SpecError:
    listed = "\n".join(f"      line {doc.where(b.value.first)[0]}: {b.path} = {b.value.value}" for b in path_values)
    problems = [
        Problem(
            "unmatched-reference",
            f"the reference {ref!r} matches no path in the spec",
            file=doc.file,
            hint="use one of the spec's paths below (or a folder above one of them)",
        )
        for ref in unmatched
    ]
    return SpecError(
        f"{len(unmatched)} spec reference(s) match no path field; the spec's paths are:\n"
        + (listed or "      (none)"),
        where=doc.file,
        problems=problems,
        fix="correct the specfile_reference_* values to paths written in the spec (they are matched on whole folders)",
    )
