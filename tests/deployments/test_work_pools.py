"""The work-pool templates rendered through the installed workers for a sample deployment and flow run:
what a worker would run. The Kubernetes Job is checked against the Kubernetes API's schema (the
official client's models), the ACI container group against the Azure SDK's; no cluster and no Azure
subscription are reached (none can be, here)."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import docker
import pytest
from prefect.client.schemas.objects import Flow, FlowRun
from prefect.client.schemas.responses import DeploymentResponse
from prefect.utilities.schema_tools import validate

from deployments.pools import POOLS, pool
from tests.deployments.kubernetes_schema import as_model, violations
from tests.deployments.server import REPO
from tests.fixtures.offline import offline_env

IMAGE = "taoflow/detectnet-v2-job:5.0.0-tf1.15.5"


@pytest.fixture(autouse=True)
def _api(prefect_api):
    """Rendering resolves block and variable references through an API: the session's harness."""


def _render(job_configuration_class, name: str, values: dict | None = None):
    template = pool(name).base_job_template()
    # The variables section is a JSON schema: the defaults and the values must satisfy it.
    validate(values or {}, template["variables"], raise_on_error=True)
    return asyncio.run(job_configuration_class.from_template_and_values(template, values or {}))


def _defaults_validate(name: str, worker) -> None:
    """Every variable the worker knows keeps its worker-given type; ours only add to them."""
    ours = pool(name).base_job_template()["variables"]["properties"]
    theirs = worker.get_default_base_job_template()["variables"]["properties"]
    for key, schema in theirs.items():
        assert key in ours, f"{name}: variable {key!r} of the worker is missing"
        for field in ("type", "anyOf", "enum", "$ref"):
            assert ours[key].get(field) == schema.get(field), f"{name}: {key}.{field} differs from the worker's"


def _prepared(config, deployment: str):
    """What the worker does next with a rendered configuration: stamp it for one flow run."""
    flow = Flow(name="train-detectnet-v2")
    sample = DeploymentResponse(name=deployment, flow_id=flow.id)
    config.prepare_for_flow_run(FlowRun(name="sample-run", flow_id=flow.id, deployment_id=sample.id),
                                deployment=sample, flow=flow)
    return config


def test_docker_template_renders_gpu_request_for_docker_py():
    from prefect_docker.worker import DockerWorker, DockerWorkerJobConfiguration

    _defaults_validate("gpu-docker", DockerWorker)
    config = _prepared(_render(DockerWorkerJobConfiguration, "gpu-docker"), "retrain-detectnet-v2-docker")
    assert config.image == IMAGE
    assert config.env["TAOFLOW_GPUS"] == "scheduler"
    kwargs = config.container_create_kwargs
    # Host GPU 0, not "all of them" (count -1): two runs on a host would otherwise share every GPU.
    assert kwargs["device_requests"] == [{"device_ids": ["0"], "capabilities": [["gpu"]]}]
    # docker-py must turn the JSON into a HostConfig (what containers.create does with them).
    host = docker.APIClient(version="1.41").create_host_config(
        device_requests=kwargs["device_requests"], shm_size=kwargs["shm_size"], ipc_mode=kwargs["ipc_mode"],
        ulimits=kwargs["ulimits"],
    )
    assert host["DeviceRequests"] == [{"Driver": "", "Count": 0, "DeviceIDs": ["0"], "Capabilities": [["gpu"]],
                                       "Options": {}}]
    assert host["ShmSize"] == 16 * 1024**3 and host["IpcMode"] == "host"
    assert {u["Name"]: u["Soft"] for u in host["Ulimits"]} == {"memlock": -1, "stack": 67108864}
    assert config.volumes == ["/var/lib/taoflow:/var/lib/taoflow"]
    # A deployment or a run replaces the object: two GPUs by id, or none for a CPU smoke run.
    two = _render(DockerWorkerJobConfiguration, "gpu-docker", {
        "container_create_kwargs": {"device_requests": [{"device_ids": ["0", "1"], "capabilities": [["gpu"]]}]}
    })
    assert two.container_create_kwargs["device_requests"][0]["device_ids"] == ["0", "1"]
    cpu = _render(DockerWorkerJobConfiguration, "gpu-docker", {"container_create_kwargs": {"shm_size": "1g"}})
    assert "device_requests" not in cpu.container_create_kwargs


def _kubernetes_job(values: dict) -> dict:
    from prefect_kubernetes.worker import KubernetesWorker, KubernetesWorkerJobConfiguration

    _defaults_validate("aks-gpu", KubernetesWorker)
    config = _prepared(_render(KubernetesWorkerJobConfiguration, "aks-gpu", values), "retrain-detectnet-v2-aks")
    return config.job_manifest


def test_the_kubernetes_job_is_valid_for_the_kubernetes_api_and_asks_for_gpus():
    manifest = _kubernetes_job({"gpu_count": 2})
    assert violations(manifest, "V1Job") == []
    job = as_model(manifest, "V1Job")
    assert job.spec.completions == 1 and job.spec.parallelism == 1 and job.spec.backoff_limit == 0
    pod = job.spec.template.spec
    [container] = pod.containers
    assert container.image == IMAGE
    assert container.resources.limits["nvidia.com/gpu"] == "2"
    assert container.resources.requests["nvidia.com/gpu"] == "2"
    # Kubernetes hands the GPUs out: taoflow must not book them again.
    assert {e.name: e.value for e in container.env}["TAOFLOW_GPUS"] == "scheduler"
    assert pod.node_selector == {"agentpool": "gpu"}
    tolerated = {(t.key, t.operator, t.value, t.effect) for t in pod.tolerations}
    assert {("sku", "Equal", "gpu", "NoSchedule"), ("nvidia.com/gpu", "Exists", None, "NoSchedule")} <= tolerated
    [shm] = [v for v in pod.volumes if v.name == "dshm"]
    assert shm.empty_dir.medium == "Memory" and shm.empty_dir.size_limit == "16Gi"
    assert ("dshm", "/dev/shm") in {(m.name, m.mount_path) for m in container.volume_mounts}
    with pytest.raises(Exception, match="gpu_count|minimum"):
        validate({"gpu_count": 0}, pool("aks-gpu").base_job_template()["variables"], raise_on_error=True)


def test_the_kubernetes_schema_check_refuses_what_the_api_would_ignore():
    """A Job field in the Pod template (where the worker's own default template puts `completions`
    and `parallelism`), a misspelt field, a wrong type: each is named."""
    manifest = _kubernetes_job({})
    pod = manifest["spec"]["template"]["spec"]
    pod["completions"] = 1
    pod["containers"][0]["resource"] = {}
    pod["tolerations"] = {"key": "sku"}
    assert violations(manifest, "V1Job") == [
        "$.spec.template.spec.containers[0].resource: no such field in V1Container",
        "$.spec.template.spec.tolerations: a list expected, got dict",
        "$.spec.template.spec.completions: no such field in V1PodSpec",
    ]


def _dropped(sent, kept, path: str = "$") -> list[str]:
    """Keys of `sent` that did not survive a trip through the Azure SDK's model (unknown to it)."""
    if isinstance(sent, dict):
        return [d for key, item in sent.items()
                for d in ([f"{path}.{key}"] if key not in kept else _dropped(item, kept[key], f"{path}.{key}"))]
    if isinstance(sent, list):
        return [d for i, (a, b) in enumerate(zip(sent, kept)) for d in _dropped(a, b, f"{path}[{i}]")]
    return []


def test_aci_template_asks_for_a_gpu_sku():
    from azure.mgmt.containerinstance.models import ContainerGroup
    from prefect_azure.workers.container_instance import AzureContainerJobConfiguration, AzureContainerWorker

    _defaults_validate("aci-gpu", AzureContainerWorker)
    values = {"resource_group_name": "rg-tao", "subscription_id": "00000000-0000-0000-0000-000000000000"}
    config = _prepared(_render(AzureContainerJobConfiguration, "aci-gpu", values), "retrain-detectnet-v2-aci")
    assert config.image == IMAGE and config.gpu_count == 1 and config.gpu_sku == "V100"
    [resource] = config.arm_template["resources"]
    # The ARM resource as the Azure SDK's ContainerGroup model reads it (the worker's own gpu_count and
    # gpu_sku reach no template: ours puts them in the container's resource requests).
    arm = {key: value for key, value in resource.items() if key != "apiVersion"}
    group = ContainerGroup.deserialize(arm)
    assert _dropped(arm, group.serialize(keep_readonly=True)) == []
    [container] = group.containers
    assert (container.resources.requests.gpu.count, container.resources.requests.gpu.sku) == (1, "V100")
    assert {e.name: e.value for e in container.environment_variables}["TAOFLOW_GPUS"] == "scheduler"
    # `prefect` is on the job image's PATH; Prefect's images' /opt/prefect/entrypoint.sh is not there.
    assert container.command[:3] == ["prefect", "flow-run", "execute"]


def test_the_docker_worker_logging_is_prefects_plus_one_filter():
    """deployments/worker-logging.yml is the installed Prefect's logging.yml with the submission filter."""
    import yaml
    from prefect.logging.configuration import DEFAULT_LOGGING_SETTINGS_PATH

    ours = yaml.safe_load((REPO / "deployments" / "worker-logging.yml").read_text())
    theirs = yaml.safe_load(DEFAULT_LOGGING_SETTINGS_PATH.read_text())
    assert ours.pop("filters") == {"submission_failure": {"()": "tasks.worker_log.SubmissionFailureFilter"}}
    assert ours["loggers"].pop("prefect.flow_runs.worker") == {"level": "NOTSET", "filters": ["submission_failure"]}
    assert ours == theirs


def test_pools_get_their_concurrency_limits_and_an_operator_overrides_them(prefect_server):
    created = subprocess.run([sys.executable, "-m", "deployments.pools", "--create", "--concurrency", "aks-gpu=16"],
                             env=prefect_server.env(), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert created.returncode == 0, created.stdout + created.stderr
    limits = {p.name: prefect_server.get(f"/work_pools/{p.name}")["concurrency_limit"] for p in POOLS}
    assert limits == {"gpu-process": None, "gpu-docker": 1, "aks-gpu": 16, "aci-gpu": 1}
    again = subprocess.run([sys.executable, "-m", "deployments.pools", "--create"], env=prefect_server.env(),
                           cwd=REPO, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert prefect_server.get("/work_pools/aks-gpu")["concurrency_limit"] == 4
    wrong = subprocess.run([sys.executable, "-m", "deployments.pools", "--concurrency", "gpu-dockr=2"],
                           cwd=REPO, capture_output=True, text=True, timeout=60)
    assert wrong.returncode != 0 and "Traceback" not in wrong.stderr
    assert wrong.stderr.strip() == ("--concurrency gpu-dockr=2: no work pool 'gpu-dockr'; the pools are "
                                    "gpu-process, gpu-docker, aks-gpu, aci-gpu")


def test_the_printed_commands_make_the_pool_create_makes(prefect_server):
    """What `python -m deployments.pools` prints for an operator to run makes the same pool as `--create`."""
    docker = pool("gpu-docker")
    created = subprocess.run([sys.executable, "-m", "deployments.pools", "--create"], env=prefect_server.env(),
                             cwd=REPO, capture_output=True, text=True, timeout=300)
    assert created.returncode == 0, created.stdout + created.stderr
    made = prefect_server.get(f"/work_pools/{docker.name}")
    for command in docker.commands():
        done = prefect_server.prefect(*command[1:])
        assert done.returncode == 0, done.stdout + done.stderr
    again = prefect_server.get(f"/work_pools/{docker.name}")
    assert {k: again[k] for k in ("type", "base_job_template", "concurrency_limit")} == {
        k: made[k] for k in ("type", "base_job_template", "concurrency_limit")}


@pytest.mark.parametrize("name", ["gpu-docker", "aks-gpu", "aci-gpu"])
def test_a_flow_run_container_gets_the_gpu_mode_and_no_analytics(name):
    """The platform hands out the GPUs (TAOFLOW_GPUS=scheduler) and the flow process inside sends no
    analytics: the workers' own environment (deployments/offline.env) does not reach the container."""
    env = pool(name).base_job_template()["variables"]["properties"]["env"]["default"]
    assert env["TAOFLOW_GPUS"] == "scheduler"
    assert env["DO_NOT_TRACK"] == offline_env()["DO_NOT_TRACK"]


def test_every_pool_in_prefect_yaml_is_declared():
    import yaml

    declared = {p.name for p in POOLS}
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    used = {d["work_pool"]["name"] for d in spec["deployments"]}
    assert used <= declared
    assert all(p.template_path is None or p.template_path.exists() for p in POOLS)
