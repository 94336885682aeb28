"""The gpu-docker pool, for real: `prefect server start`, `python -m deployments.pools --create`,
`prefect deploy --all`, and prefect-docker's own worker (`prefect worker start --type docker`,
with deployments/worker-logging.yml) running `retrain-detectnet-v2-docker` in the job image
built from deployments/Dockerfile (the stand-in TAO image, this machine's Python; tests/deployments/job_image.py):

(a) a CPU run (no device request, `docker_gpus: none`, the demo data bind-mounted through the
    `volumes` job variable) trains with `launcher: process` inside the flow-run container and ends
    Completed / "Promoted", the model published;
(b) a run with the pool's GPU request reaches the engine through `container_create_kwargs`: this
    engine has no NVIDIA runtime and says so, and the run crashes with that message, once, no traceback;
(c) a run whose job image is missing crashes with one message naming the image and how to fix it,
    no traceback, in the run's logs read back through the API.

No GPU here: that a GPU run trains is not shown (docs/deploy.md).
"""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from tests.deployments.server import (
    REPO,
    closed_port,
    deploy_as_an_operator,
    run_deployment,
    run_logs,
    running_server,
    running_worker,
    wait_terminal,
)
from tests.flow.conftest import request_fields

pytestmark = [pytest.mark.services, pytest.mark.slow]

DOCKER_DEPLOYMENT = "train-detectnet-v2/retrain-detectnet-v2-docker"
#: The engine's words for a GPU request without the NVIDIA runtime (moby daemon/devices.go).
NO_GPU_DRIVER = 'could not select device driver "" with capabilities: [[gpu]]'


@pytest.fixture(scope="module")
def docker_pool(tmp_path_factory, job_image, demo_data, docker_client):
    """Server, pools, deployments and a docker worker; the three runs, run one after the other.

    The worker is stopped (its log batches flushed) before the tests read the runs' logs."""
    home = tmp_path_factory.mktemp("docker-pool")
    out, taoflow_home = home / "out", home / "taoflow"
    out.mkdir()
    taoflow_home.mkdir()
    (home / "prefect").mkdir()
    (out / "tfrecords").mkdir()
    # The demo specs the job image carries (specs/ of the repository, at TAOFLOW_PROJECT_DIR).
    request = request_fields(demo_data, tfrecords=str(out / "tfrecords"), output=str(out), image="unused",
                             launcher="process", key_block=None, storage_credentials=None,
                             spec="/opt/taoflow/specs/demo_train_resnet18.txt",
                             dataset_convert_spec="/opt/taoflow/specs/demo_tfrecords.txt")
    # Data and results at the same paths inside the container as here; TAOFLOW_HOME is the template's.
    volumes = [f"{demo_data}:{demo_data}:ro", f"{out}:{out}", f"{taoflow_home}:/var/lib/taoflow"]
    # A registry on this machine that nothing listens on: the pull fails at once, nothing leaves the host.
    missing = f"127.0.0.1:{closed_port()}/taoflow/detectnet-v2-job:absent"
    cases = {
        "cpu": {"image": job_image, "volumes": volumes, "container_create_kwargs": {"shm_size": "1g"}},
        "gpu": {"image": job_image, "volumes": volumes},
        "missing image": {"image": missing, "volumes": volumes},
    }
    runs: dict[str, dict] = {}
    with running_server(home / "prefect") as server:
        deploy_as_an_operator(server)
        try:
            with running_worker(server, home, "gpu-docker", "--type", "docker", "--limit", "1",
                                PREFECT_LOGGING_SETTINGS_PATH=str(REPO / "deployments" / "worker-logging.yml")):
                for case, job_variables in cases.items():
                    run_id = run_deployment(server, DOCKER_DEPLOYMENT, request, job_variables)
                    run, seconds = wait_terminal(server, run_id)
                    runs[case] = {"id": run_id, "run": run, "seconds": seconds}
                    print(f"\n{case}: {run['state_type']} ({run['state_name']}) {seconds:.0f} s after it was created")
        finally:
            _remove_containers(docker_client, [r["id"] for r in runs.values()])
        for case in runs.values():
            case["logs"] = run_logs(server, case["id"], settle=0)
        yield {"runs": runs, "out": out, "missing": missing, "worker_log": home / "worker.log"}


def _remove_containers(client, run_ids: list[str]) -> None:
    for run_id in run_ids:
        for container in client.containers.list(all=True, filters={"label": f"io.prefect.flow-run-id={run_id}"}):
            container.remove(force=True)


def test_a_cpu_run_trains_in_the_job_container_and_is_promoted(docker_pool):
    case = docker_pool["runs"]["cpu"]
    run = case["run"]
    assert run["state_type"] == "COMPLETED", "\n".join([run["state"]["message"] or "", *case["logs"][-30:],
                                                        docker_pool["worker_log"].read_text()[-3000:]])
    assert run["state_name"] == "Promoted", run["state"]
    assert (docker_pool["out"] / "shapes" / "run-1" / "weights" / "shapes_detector.hdf5").is_file()
    # TAO ran as a process inside the flow-run container (no Docker engine there for the docker launcher).
    assert any("detectnet_v2" in m for m in case["logs"]), case["logs"]


def test_the_gpu_request_reaches_the_engine_and_its_refusal_is_one_clean_message(docker_pool):
    case = docker_pool["runs"]["gpu"]
    run = case["run"]
    assert run["state_type"] == "CRASHED", run["state"]
    assert NO_GPU_DRIVER in run["state"]["message"]
    assert not any("Traceback" in m for m in case["logs"]), case["logs"]
    carrying = [m for m in case["logs"] if NO_GPU_DRIVER in m]
    assert len(carrying) == 1, carrying
    assert "NVIDIA Container Toolkit" in carrying[0] and "how to fix" in carrying[0]


def test_a_missing_job_image_fails_the_run_with_one_clear_message(docker_pool):
    case = docker_pool["runs"]["missing image"]
    run = case["run"]
    image = docker_pool["missing"]
    assert run["state_type"] == "CRASHED", run["state"]
    # The state message is Prefect's own: the engine's refusal of docker-py's pull request, whose URL
    # names the image's repository (URL-encoded) and tag; the run's logs say it in one clear line.
    assert image.rsplit(":", 1)[0] in unquote(run["state"]["message"])
    assert not any("Traceback" in m for m in case["logs"]), case["logs"]
    carrying = [m for m in case["logs"] if image in m]
    assert len(carrying) == 1, carrying
    assert "is not on this Docker host and could not be pulled" in carrying[0]
    assert f"scripts/job-image -t {image}" in carrying[0]
