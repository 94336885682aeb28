"""The spec engine: parse, check, extract facts from and rewrite DetectNet_v2 spec files.

It reads a spec the way TAO does (`text_format.Merge` into NVIDIA's messages): TAO's tokens and
literal rules (`lexer`, `literals`), the merged message it builds (`reading`: last value wins, blocks
merge, map keys replace, oneofs clear), the parser's errors and TAO 5's validator (`check`,
`validator`). tests/spec/test_against_tao.py holds it against NVIDIA's own parser.

The flow's path through it, in order::

    doc = parse_spec(text, file="spec.txt", kind="train")     # SpecError on bad syntax (file:line:col)
    warnings = require_valid(doc)                              # SpecError listing every error at once
    facts = extract_facts(doc)                                 # sizes, classes, paths for the validator
    result = rewrite_spec(doc, {reference: container_path}, num_epochs=5, overrides={})
    result.text, result.changes, result.diff                   # byte-identical except the changed values

`check_spec` returns the problems instead of raising. Everything here is plain Python with no
Prefect import; `tasks.spec.task` holds the thin Prefect task wrappers.
"""

from __future__ import annotations

from tasks.errors import Problem
from tasks.spec.check import check_document, require_valid
from tasks.spec.facts import PathField, SpecFacts, extract_facts
from tasks.spec.retrain import retrain_spec
from tasks.spec.rewrite import Change, RewriteResult, rebase_path, rewrite_document
from tasks.spec.schema import KINDS, Schema, load_schema
from tasks.spec.syntax import Document, parse

__all__ = [
    "KINDS",
    "Change",
    "Document",
    "PathField",
    "RewriteResult",
    "Schema",
    "SpecFacts",
    "check_spec",
    "extract_facts",
    "load_schema",
    "parse_spec",
    "rebase_path",
    "require_valid",
    "retrain_spec",
    "rewrite_spec",
]


def parse_spec(text: str | bytes, file: str | None = None, kind: str = "train") -> Document:
    """Parse a spec's text; `kind` is "train" (experiment spec) or "dataset_convert".

    >>> doc = parse_spec('training_config { num_epochs: 3 }', file="spec.txt")
    >>> doc.kind, doc.file
    ('train', 'spec.txt')
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    return parse(text, file, kind)


def check_spec(spec: Document | str | bytes, file: str | None = None, kind: str = "train") -> list[Problem]:
    """Every problem (errors and warnings) of a spec; a syntax error still raises `SpecError`.

    >>> [p.code for p in check_spec("training_config { num_epochs: 0.5 }", "spec.txt") if p.code == "wrong-type"]
    ['wrong-type']
    """
    doc = spec if isinstance(spec, Document) else parse_spec(spec, file, kind)
    return check_document(doc)


def rewrite_spec(
    spec: Document | str | bytes,
    rebasings: dict[str, str] | None = None,
    num_epochs: int | None = None,
    overrides: dict[str, str] | None = None,
    *,
    file: str | None = None,
    kind: str = "train",
) -> RewriteResult:
    """Rebase path fields (reference -> actual), set num_epochs and `a.b.c=value` overrides.

    Raises `SpecError` when a reference matches no path field, an override names no field or
    has a value of the wrong type.

    >>> result = rewrite_spec('model_config { pretrained_model_file: "/old/resnet18.hdf5" }',
    ...                       {"/old": "/workspace/taoflow/base_model"}, file="spec.txt")
    >>> "/workspace/taoflow/base_model/resnet18.hdf5" in result.text, [c.field for c in result.changes]
    (True, ['model_config.pretrained_model_file'])
    """
    doc = spec if isinstance(spec, Document) else parse_spec(spec, file, kind)
    return rewrite_document(doc, rebasings, num_epochs, overrides)
