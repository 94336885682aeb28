"""The work-pool templates rendered through the installed workers: what a worker would run."""

from __future__ import annotations

import asyncio

import docker
import pytest
from prefect.utilities.schema_tools import validate

from deployments.pools import POOLS, pool

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


def test_docker_template_renders_gpu_request_for_docker_py():
    from prefect_docker.worker import DockerWorker, DockerWorkerJobConfiguration

    _defaults_validate("gpu-docker", DockerWorker)
    config = _render(DockerWorkerJobConfiguration, "gpu-docker")
    assert config.image == IMAGE
    kwargs = config.container_create_kwargs
    assert kwargs["device_requests"] == [{"count": -1, "capabilities": [["gpu"]]}]
    # docker-py must turn the JSON into a HostConfig (what containers.create does with them).
    host = docker.APIClient(version="1.41").create_host_config(
        device_requests=kwargs["device_requests"], shm_size=kwargs["shm_size"], ipc_mode=kwargs["ipc_mode"],
        ulimits=kwargs["ulimits"],
    )
    assert host["DeviceRequests"] == [{"Driver": "", "Count": -1, "DeviceIDs": [], "Capabilities": [["gpu"]], "Options": {}}]
    assert host["ShmSize"] == 16 * 1024**3 and host["IpcMode"] == "host"
    assert {u["Name"]: u["Soft"] for u in host["Ulimits"]} == {"memlock": -1, "stack": 67108864}
    assert config.volumes == ["/var/lib/taoflow:/var/lib/taoflow"]
    # A deployment may still override per run (e.g. two GPUs by id).
    two = _render(DockerWorkerJobConfiguration, "gpu-docker", {
        "container_create_kwargs": {"device_requests": [{"device_ids": ["0", "1"], "capabilities": [["gpu"]]}]}
    })
    assert two.container_create_kwargs["device_requests"][0]["device_ids"] == ["0", "1"]


def test_kubernetes_template_requests_gpus_on_the_gpu_node_pool():
    from prefect_kubernetes.worker import KubernetesWorker, KubernetesWorkerJobConfiguration

    _defaults_validate("aks-gpu", KubernetesWorker)
    config = _render(KubernetesWorkerJobConfiguration, "aks-gpu", {"gpu_count": 2})
    pod = config.job_manifest["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == IMAGE
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 2
    assert container["resources"]["requests"]["nvidia.com/gpu"] == 2
    assert pod["nodeSelector"] == {"agentpool": "gpu"}
    assert {"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"} in pod["tolerations"]
    shm = next(v for v in pod["volumes"] if v["name"] == "dshm")
    assert shm["emptyDir"] == {"medium": "Memory", "sizeLimit": "16Gi"}
    assert {"name": "dshm", "mountPath": "/dev/shm"} in container["volumeMounts"]
    with pytest.raises(Exception, match="gpu_count|minimum"):
        validate({"gpu_count": 0}, pool("aks-gpu").base_job_template()["variables"], raise_on_error=True)


def test_aci_template_asks_for_a_gpu_sku():
    from prefect_azure.workers.container_instance import AzureContainerJobConfiguration, AzureContainerWorker

    _defaults_validate("aci-gpu", AzureContainerWorker)
    values = {"resource_group_name": "rg-tao", "subscription_id": "00000000-0000-0000-0000-000000000000"}
    config = _render(AzureContainerJobConfiguration, "aci-gpu", values)
    assert config.image == IMAGE and config.gpu_count == 1 and config.gpu_sku == "V100"


def test_every_pool_in_prefect_yaml_is_declared():
    import yaml

    from tests.deployments.server import REPO

    declared = {p.name for p in POOLS}
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    used = {d["work_pool"]["name"] for d in spec["deployments"]}
    assert used <= declared
    assert all(p.template_path is None or p.template_path.exists() for p in POOLS)
