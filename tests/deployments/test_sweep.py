"""The sweep: its grid as plain functions, and a real fan-out to a served training deployment."""

from __future__ import annotations

import subprocess
import time

import pytest
from prefect.client.schemas.objects import FlowRun, State, StateType

from flows.sweep import MAX_VARIANTS, SweepDataset, plan_sweep, sweep_detectnet_v2, tabulate
from tasks.errors import ConfigError, LaunchError
from tasks.job.demo import generate_demo_dataset
from tasks.job.outcome import JobResult
from tasks.job.request import TrainRequest
from tests.deployments.server import serve_train_flow, stop_process
from tests.fixtures.services import prefect_api_at
from tests.flow.conftest import request_fields

LR = "training_config.learning_rate.soft_start_annealing_schedule.max_learning_rate"


def _base(tmp_path, **extra) -> TrainRequest:
    return TrainRequest.model_validate(
        request_fields(tmp_path, tfrecords=str(tmp_path / "tfr"), output=str(tmp_path / "out"), image="tao:x", **extra)
    )


def test_grid_is_the_product_of_the_axes_each_with_its_own_subfolder(tmp_path):
    datasets = [SweepDataset(name=n, training_data=f"az://d/{n}", training_tfrecords=f"az://t/{n}") for n in "ab"]
    variants = plan_sweep(_base(tmp_path), [10, 20], {LR: ["5e-4", "1e-3", "2e-3"]}, datasets)
    assert len(variants) == 2 * 3 * 2
    assert len({v.request.model_subfolder for v in variants}) == 12
    assert {(v.request.num_epochs, v.request.spec_overrides[LR], v.request.training_data.location) for v in variants} == {
        (e, lr, f"az://d/{n}") for e in (10, 20) for lr in ("5e-4", "1e-3", "2e-3") for n in "ab"
    }
    first = variants[0]
    assert first.settings == {"epochs": "10", "max_learning_rate": "5e-4", "dataset": "a"}
    assert first.request.training_tfrecords.location == "az://t/a"
    assert first.request.training_data.spec_reference == _base(tmp_path).training_data.spec_reference
    assert plan_sweep(_base(tmp_path))[0].request.num_epochs == 3  # no axis: one run of the base


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_epochs": [0]}, "empty axis or an epoch count"),
        ({"spec_grid": {LR: []}}, "empty axis"),
        ({"num_epochs": list(range(1, 10)), "spec_grid": {LR: [str(i) for i in range(8)]}}, f"more than {MAX_VARIANTS}"),
    ],
)
def test_bad_grids_are_config_errors(tmp_path, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        plan_sweep(_base(tmp_path), **kwargs)


def test_a_plain_key_is_refused_before_it_lands_in_run_parameters(tmp_path):
    with pytest.raises(ConfigError) as caught:
        plan_sweep(_base(tmp_path, key="tlt_encode"), [1, 2])
    assert "key_block" in caught.value.fix and "tlt_encode" not in str(caught.value)


def test_table_has_metrics_for_results_and_the_reason_for_failures(tmp_path):
    variants = plan_sweep(_base(tmp_path), [1, 2, 3])
    runs = [FlowRun(flow_id=f"{'0' * 8}-0000-0000-0000-{'0' * 12}", name=f"sweep-{i}",
                    state=State(type=StateType.COMPLETED if i < 2 else StateType.FAILED, name="x")) for i in range(3)]
    trained = JobResult(status="trained", run_id="r", results_location="/out", model_location="/out/m.hdf5",
                        final_map=71.5, epochs_run=1)
    rows = tabulate(variants, runs, [trained, None, ConfigError("the spec is broken")])
    assert rows[0] | {"state": "-"} == {"variant": "01-1", "epochs": "1", "flow_run": "sweep-0", "state": "-",
                                        "status": "trained", "final_map": 71.5, "epochs_run": 1, "model": "/out/m.hdf5"}
    assert rows[1]["status"] == "failed" and "did not persist" in rows[1]["model"]
    assert rows[2]["model"] == "the spec is broken"


@pytest.mark.services
def test_sweep_fans_out_to_a_served_deployment_and_tabulates(prefect_server, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH

    generate_demo_dataset(tmp_path / "data" / "shapes", count=24)
    (tmp_path / "pretrained" / "resnet18").mkdir(parents=True)
    (tmp_path / "pretrained" / "resnet18" / "resnet18.hdf5").write_bytes(b"\x89HDF\r\n\x1a\n stand-in")
    (tmp_path / "tfr").mkdir()  # empty: the dry run plans a dataset_convert
    storage = tmp_path / "results"
    env = dict(PREFECT_RESULTS_PERSIST_BY_DEFAULT="true", PREFECT_LOCAL_STORAGE_PATH=str(storage),
               TAOFLOW_HOME=str(tmp_path / "home"))
    served = serve_train_flow(prefect_server, "sweep-target", open(tmp_path / "serve.log", "wb"), **env)
    try:
        with prefect_api_at(prefect_server.api_url, {PREFECT_LOCAL_STORAGE_PATH: storage}):
            started = time.monotonic()
            rows = sweep_detectnet_v2(
                base=_base(tmp_path), num_epochs=[1, 2], spec_grid={LR: ["5e-4", "1e-3"]},
                deployment="train-detectnet-v2/sweep-target", dry_run=True, timeout_seconds=180,
            )
            took = time.monotonic() - started
            with get_client(sync_client=True) as client:
                table = [a for a in client.read_artifacts() if a.key == "sweep-results"]
    finally:
        stop_process(served)
    print(f"\n4 dry-run variants through the served deployment in {took:.1f} s")
    assert [(r["epochs"], r["max_learning_rate"]) for r in rows] == [("1", "5e-4"), ("1", "1e-3"), ("2", "5e-4"), ("2", "1e-3")]
    assert {r["status"] for r in rows} == {"planned"} and {r["state"] for r in rows} == {"Completed"}
    assert all(r["model"].endswith(f"shapes/run-1-sweep-{r['variant']}") for r in rows), rows
    assert table and table[0].type == "table"


@pytest.mark.services
def test_sweep_fails_with_the_table_when_a_variant_fails(prefect_server, tmp_path):
    served = serve_train_flow(prefect_server, "sweep-broken", subprocess.DEVNULL, TAOFLOW_HOME=str(tmp_path / "home"))
    try:
        with prefect_api_at(prefect_server.api_url):
            with pytest.raises(ConfigError, match="does not exist"):
                sweep_detectnet_v2(base=_base(tmp_path), deployment="train-detectnet-v2/nope", timeout_seconds=5)
            with pytest.raises(LaunchError, match="2 of 2 sweep runs failed") as caught:
                sweep_detectnet_v2(base=_base(tmp_path / "missing"), num_epochs=[1, 2],
                                   deployment="train-detectnet-v2/sweep-broken", dry_run=True, timeout_seconds=120)
    finally:
        stop_process(served)
    # Each failed run is named with its own reason: the data that is not there.
    assert len(caught.value.problems) == 2
    assert all("does not exist" in p.message for p in caught.value.problems), caught.value.problems
