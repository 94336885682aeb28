"""The sweep: its grid as plain functions, and a real fan-out to a served training deployment."""

from __future__ import annotations

import subprocess
import time

import pytest

from flows.sweep import MAX_VARIANTS, SweepDataset, plan_sweep, sweep_detectnet_v2
from tasks.errors import ConfigError, LaunchError
from tasks.job.demo import generate_demo_dataset
from tasks.job.outcome import JobResult
from tasks.job.promotion_policy import Metrics, Verdict
from tasks.job.request import TrainRequest
from tasks.registry import list_versions, read_card
from tasks.registry.card import Evaluation, HeldOut, ModelCard
from tasks.registry.sweep_table import RunSummary, failed_rows, sweep_row
from tests.dataset.check_cases import write_shard
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


def _card(run_id: str, evaluated: float, validated: float | None, version: str = "v") -> ModelCard:
    scores = Metrics(mean_average_precision=evaluated)
    return ModelCard(
        version=version, run_id=run_id, created_at="2026-01-01T00:00:00+00:00", model="weights/m.hdf5",
        evaluation=Evaluation(**scores.model_dump(), held_out=HeldOut(source="validation_data", fingerprint="f")),
        training_validation=Metrics(mean_average_precision=validated) if validated is not None else None,
        dataset_fingerprint="d", spec_sha256="s", tao_image="tao:x", num_epochs=3,
        verdict=Verdict(promote=True, challenger=scores))


def _run(state: str = "Completed", completed: bool = True, **extra) -> RunSummary:
    return RunSummary(name="sweep-01", run_id="r1", state=state, completed=completed,
                      link="http://127.0.0.1:4200/runs/flow-run/r1", **extra)


def test_a_row_scores_the_variant_on_its_cards_held_out_evaluation():
    trained = JobResult(status="trained", run_id="r1", results_location="/out", model_location="/out/m.hdf5",
                        final_map=65.0, epochs_run=3)
    row = sweep_row("01-3", {"epochs": "3"}, _run("Promoted", result=trained), _card("r1", 83.5, 65.0, "run-1-x"),
                    "/models/shapes")
    assert row == {"variant": "01-3", "epochs": "3", "flow_run": "sweep-01", "state": "Promoted", "status": "trained",
                   "map": 83.5, "validation_map": 65.0, "epochs_run": 3, "version": "run-1-x",
                   "model": "/models/shapes/run-1-x/weights/m.hdf5", "note": None,
                   "link": "http://127.0.0.1:4200/runs/flow-run/r1"}
    # The card is the record even without the run's result; what the card lacks comes from the result.
    assert sweep_row("01", {}, _run(), _card("r1", 83.5, 65.0), "/m")["map"] == 83.5
    assert sweep_row("01", {}, _run(result=trained), _card("r1", 83.5, None), "/m")["validation_map"] == 65.0
    assert sweep_row("01", {}, _run(), _card("r1", 83.5, None), "/m")["validation_map"] is None


def test_a_completed_run_without_card_or_result_says_so_and_does_not_fail_the_sweep():
    row = sweep_row("01", {}, _run(reason="its result was not persisted"), None, "/models/shapes")
    assert row["status"] == "no result" and row["map"] is None and row["state"] == "Completed"
    assert row["note"] == ("Completed, but no model card of this run in /models/shapes and no persisted result (its "
                           "result was not persisted); open the run: http://127.0.0.1:4200/runs/flow-run/r1")
    planned = JobResult(status="planned", run_id="r1", results_location="/models/shapes/run-1")
    dry = sweep_row("01", {}, _run(result=planned), None, "/models/shapes")
    assert (dry["status"], dry["model"], dry["note"]) == ("planned", "/models/shapes/run-1", None)
    trained = JobResult(status="trained", run_id="r1", results_location="/o", final_map=65.0, epochs_run=2)
    lost = sweep_row("01", {}, _run(result=trained), None, "/models/shapes")
    assert (lost["status"], lost["map"], lost["validation_map"]) == ("trained", None, 65.0)
    assert lost["note"] == "no model card of this run in /models/shapes"
    assert failed_rows([row, dry, lost]) == []


def test_a_run_that_did_not_complete_fails_the_sweep_with_its_reason():
    row = sweep_row("02", {}, _run("Failed", completed=False, reason="the spec is broken"), None, "/m")
    assert (row["status"], row["note"], row["state"]) == ("failed", "the spec is broken", "Failed")
    crashed = sweep_row("03", {}, _run("Crashed", completed=False), _card("r1", 90.0, 80.0), "/m")
    assert crashed["note"] == "the run ended Crashed" and crashed["map"] is None
    assert failed_rows([row, crashed]) == [row, crashed]


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


# --- real sweeps: variants trained by the stand-in TAO image through dockerd ---------------------


def _trained_base(data_root, image: str, tmp_path) -> TrainRequest:
    """The demo dataset with its TFRecords already made (real TFRecord framing, two folds, fold 0 held out):
    every variant reads the same shards, none converts. Promotion off, as docs/deploy.md advises for sweeps."""
    tfrecords = tmp_path / "tfrecords"
    tfrecords.mkdir()
    for fold in range(2):
        for shard in range(2):
            write_shard(tfrecords / f"shapes-fold-{fold:03d}-of-002-shard-{shard:05d}-of-00002", 16)
    return TrainRequest.model_validate(request_fields(data_root, tfrecords=str(tfrecords), output=str(tmp_path / "out"),
                                                      image=image, promotion={"enabled": False}))


def _sweep_through(prefect_server, tmp_path, name: str, persist: bool, **sweep) -> list[dict]:
    """`sweep_detectnet_v2` against a served training deployment whose runs do (or do not) persist results."""
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH

    storage = tmp_path / "results"
    served = serve_train_flow(prefect_server, name, open(tmp_path / f"{name}.log", "wb"),
                              PREFECT_RESULTS_PERSIST_BY_DEFAULT=str(persist).lower(),
                              PREFECT_LOCAL_STORAGE_PATH=str(storage))
    try:
        with prefect_api_at(prefect_server.api_url, {PREFECT_LOCAL_STORAGE_PATH: storage}):
            return sweep_detectnet_v2(deployment=f"train-detectnet-v2/{name}", **sweep)
    finally:
        stop_process(served)


def _run_id(row: dict, prefect_server) -> str:
    """The variant's flow run, from the row's link to it in the UI."""
    ui = prefect_server.api_url.removesuffix("/api")
    assert row["link"].startswith(f"{ui}/runs/flow-run/"), row
    return row["link"].rsplit("/", 1)[1]


def _assert_rows_are_the_cards(rows: list[dict], app: str, prefect_server) -> list:
    """Each row's mAP is its card's held-out evaluation, read back from the registry by the run's id."""
    listed = {version.run_id: version for version in list_versions(app)}
    cards = []
    for row in rows:
        version = listed[_run_id(row, prefect_server)]
        card = read_card(app, version.version)
        assert row["status"] == "trained" and row["version"] == card.version, row
        assert row["map"] == version.mean_average_precision == card.evaluation.mean_average_precision, row
        assert row["validation_map"] == card.training_validation.mean_average_precision, row
        assert row["model"] == f"{app}/{card.version}/{card.model}"
        cards.append(card)
    return cards


@pytest.mark.services
def test_a_trained_sweeps_table_scores_each_variant_on_its_cards_evaluation(prefect_server, demo_data, engine_env,
                                                                            tmp_path):
    base = _trained_base(demo_data, engine_env(), tmp_path)
    rows = _sweep_through(prefect_server, tmp_path, "sweep-trained", persist=True, base=base, num_epochs=[2, 3],
                          timeout_seconds=900)
    cards = _assert_rows_are_the_cards(rows, str(tmp_path / "out" / "shapes"), prefect_server)
    assert [(r["epochs"], r["epochs_run"], r["state"], r["note"]) for r in rows] == [
        ("2", 2, "Not promoted", None), ("3", 3, "Not promoted", None)]
    # The stand-in's evaluate scores a longer-trained model higher (tests/standin/.../evaluate); its training
    # validation does not: the number a winner is picked on is the evaluation's, as promotion's is.
    assert [c.evaluation.mean_average_precision for c in cards] == [pytest.approx(79.3333, abs=1e-3), 83.5]
    assert all(r["map"] != r["validation_map"] for r in rows), rows


@pytest.mark.services
def test_without_persisted_results_the_table_still_reads_the_cards_and_the_sweep_passes(prefect_server, demo_data,
                                                                                       engine_env, tmp_path):
    base = _trained_base(demo_data, engine_env(), tmp_path)
    rows = _sweep_through(prefect_server, tmp_path, "sweep-unpersisted", persist=False, base=base, num_epochs=[1, 2],
                          timeout_seconds=900)
    _assert_rows_are_the_cards(rows, str(tmp_path / "out" / "shapes"), prefect_server)
    assert [r["epochs_run"] for r in rows] == [1, 2] and {r["state"] for r in rows} == {"Not promoted"}
    # A completed run that published no card (a dry run) and whose result was not persisted: its row
    # says so, with the run's state and link, and the sweep does not fail for it.
    dry = _sweep_through(prefect_server, tmp_path, "sweep-unpersisted", persist=False, base=base, num_epochs=[1, 2],
                         dry_run=True, timeout_seconds=300)
    assert {(r["status"], r["state"], r["map"]) for r in dry} == {("no result", "Completed", None)}, dry
    for row in dry:
        assert row["note"].startswith(f"Completed, but no model card of this run in {tmp_path / 'out' / 'shapes'}")
        assert row["note"].endswith(f"open the run: {row['link']}") and _run_id(row, prefect_server)
