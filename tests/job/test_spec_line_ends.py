"""A spec written with CRLF or bare-CR line ends through the job's pre-flight: TAO's open() reads each
as a line end, so the facts are those of the LF file, and the rewritten spec keeps the file's own line
ends -- byte for byte the user's file but for the rebased paths and num_epochs."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tasks.job.preflight import prepare_spec
from tests.launch.harness import DEMO_SPEC, staged_request


@pytest.mark.parametrize("eol", ["\r\n", "\r"], ids=["crlf", "cr"])
def test_line_ends_survive_the_rewrite_and_do_not_change_the_facts(eol, tmp_path):
    lf = prepare_spec(*staged_request(tmp_path))
    spec = tmp_path / "spec.txt"
    spec.write_bytes(DEMO_SPEC.read_bytes().replace(b"\n", eol.encode()))
    prepared = prepare_spec(*staged_request(tmp_path, spec=str(spec)))
    assert prepared.text == lf.text.replace("\n", eol)
    assert prepared.facts == replace(lf.facts, file=prepared.facts.file)  # lines, paths, classes, epochs
    assert prepared.host_facts == replace(lf.host_facts, file=prepared.host_facts.file)
