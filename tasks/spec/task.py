"""Prefect task wrappers of the spec engine. No retries: a bad spec is the user's to fix."""

from __future__ import annotations

from prefect import task

from tasks.errors import Problem
from tasks.spec import RewriteResult, SpecFacts, extract_facts, parse_spec, require_valid, rewrite_spec


@task(name="check-spec", retries=0)
def check_spec_task(text: str, file: str | None = None, kind: str = "train") -> tuple[SpecFacts, list[Problem]]:
    """Parse and check a spec (raising `SpecError` on any error); return its facts and warnings."""
    doc = parse_spec(text, file, kind)
    warnings = require_valid(doc)
    return extract_facts(doc), warnings


@task(name="rewrite-spec", retries=0)
def rewrite_spec_task(
    text: str,
    rebasings: dict[str, str],
    num_epochs: int | None = None,
    overrides: dict[str, str] | None = None,
    file: str | None = None,
    kind: str = "train",
) -> RewriteResult:
    """Rebase the spec's paths onto the container mounts and set the epochs; `SpecError` on a bad reference."""
    return rewrite_spec(text, rebasings, num_epochs, overrides, file=file, kind=kind)
