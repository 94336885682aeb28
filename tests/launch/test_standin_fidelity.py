"""The stand-in TAO against NVIDIA's recorded endings: for every scenario of tao-traces/train in
both epoch readings, the stand-in (in the image through dockerd, and as a process) must leave the
same status lines (keys in the same order, same statuses, messages and epoch numbers), the same
files, the same last console lines and the same exit code. A double that drifts from TAO fails
here, before any test can agree with it."""

from __future__ import annotations

import json

import pytest

from tests.launch.harness import Recorder
from tests.standin.traces import (
    READINGS,
    SCENARIOS,
    load_train_trace,
    result_files,
    scenario_knobs,
    structural_differences,
)


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_standin_ends_like_tao(harness, reading, scenario):
    trace = load_train_trace(reading, scenario)
    # The recordings' set-up: 3 epochs, a validation after each, the default checkpoint interval.
    plan = harness.plan(epochs=3, name="model", run_id="fidelity", checkpoint_interval=10, validation_period=1)
    plan = plan.with_options(env=dict(plan.env, **scenario_knobs(scenario, reading)))
    if scenario == "rerun_finished":
        harness.launcher.run(plan)
    seen = Recorder()
    outcome = harness.launcher.run(plan, seen.observer())
    results = plan.results_host_dir
    records = [json.loads(line) for line in (results / "status.json").read_text().splitlines()]
    problems = structural_differences(trace, records, result_files(results), seen.lines, outcome.exit_code)
    assert problems == []
