"""The Prefect task wrappers on a real Prefect API: results come back, spec errors fail at once."""

from __future__ import annotations

import pytest
from prefect import flow

from tasks.errors import SpecError
from tasks.spec.task import check_spec_task, rewrite_spec_task
from tests.spec._specs import FACE_MASK_TRAIN, spec_text

pytestmark = pytest.mark.services


def test_tasks_in_a_flow(prefect_api):
    @flow
    def spec_flow(text: str):
        facts, warnings = check_spec_task(text, "s.txt")
        result = rewrite_spec_task(text, {"/workspace/tao-experiments/data": "/d"}, 5)
        return facts, warnings, result

    text = spec_text("tao_tutorials_5.5__detectnet_v2_train_resnet18_kitti.txt")
    facts, warnings, result = spec_flow(text)
    assert facts.output_width == 1248 and warnings == []
    assert "num_epochs: 5\n" in result.text and len(result.changes) == 3

    @flow
    def bad_flow(text: str):
        return check_spec_task(text, FACE_MASK_TRAIN)

    with pytest.raises(SpecError) as info:
        bad_flow(spec_text(FACE_MASK_TRAIN))
    assert [(p.line, p.column) for p in info.value.problems] == [(55, 29), (66, 29)]
