"""`DockerLauncher`: one container per job on a Docker engine (docker-py).

The engine comes from DOCKER_HOST (docker's own environment) or a prefect-docker `DockerHost`
block; a missing image is pulled with progress, logging in with a `DockerRegistryCredentials`
block. Containers carry the run id as a label, so a new attempt can reap what an earlier,
killed attempt left behind.
"""

from __future__ import annotations

import queue
import resource
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from tasks.errors import EngineUnavailable, GpuRuntimeMissing, ImageUnavailable, LaunchError
from tasks.launch.base import (
    CancelToken,
    JobMonitor,
    JobObserver,
    JobOutcome,
    StopPolicy,
    pump_lines,
    supervise,
)
from tasks.launch.docker_gpus import assign_container_gpus, evict_containers, gpu_neighbours
from tasks.launch.gpus import Handover
from tasks.launch.plan import RUN_LABEL, LaunchPlan
from tasks.launch.results import prepare_results
from tasks.launch.watchdog import Watchdog
from tasks.redact import Redactor

GPU_RUNTIME_MARKERS = ("could not select device driver", "nvidia-container", "unknown or invalid runtime name: nvidia")
NVIDIA_TOOLKIT_URL = "https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/install-guide.html"


def _docker():
    import docker  # lazily: the plan and the CLI must work where docker-py is absent

    return docker


@dataclass
class DockerLauncher:
    """Runs a `LaunchPlan` in a fresh container and supervises it to the end."""

    #: Name of a prefect-docker DockerHost block; None uses DOCKER_HOST / the local socket.
    docker_host_block: str | None = None
    #: Name of a prefect-docker DockerRegistryCredentials block used before a pull.
    registry_credentials_block: str | None = None
    policy: StopPolicy = field(default_factory=StopPolicy)
    #: An already connected docker.DockerClient (tests, callers that manage their own).
    client: Any = None
    #: How a container is given its booked GPUs (tasks.launch.gpus: TAOFLOW_GPU_HANDOVER).
    gpu_handover: Handover = "device-requests"
    #: The engine's address for the job's watchdog (a DockerHost block's base_url; None: DOCKER_HOST).
    engine_url: str | None = None

    def engine(self):
        if self.client is not None:
            return self.client
        docker = _docker()
        where = f"DockerHost block {self.docker_host_block!r}" if self.docker_host_block else "DOCKER_HOST"
        try:
            if self.docker_host_block:
                from prefect_docker import DockerHost

                host = DockerHost.load(self.docker_host_block)
                client, self.engine_url = host.get_client(), host.base_url
            else:
                client = docker.from_env(timeout=120)
            client.ping()
        except (docker.errors.DockerException, OSError) as exc:
            raise EngineUnavailable(
                f"no Docker engine answers ({exc})",
                where=where,
                fix="start the Docker engine (or set DOCKER_HOST / the DockerHost block to a running one)",
            ) from None
        self.client = client
        return client

    def run(self, plan: LaunchPlan, observer: JobObserver | None = None, cancel: CancelToken | None = None) -> JobOutcome:
        observer = observer or JobObserver()
        client = self.engine()
        if not plan.gpus_assigned:  # run directly, not through a BookingLauncher: nothing is booked
            plan = self.assign_gpus(plan, None)
        results = plan.results_host_dir
        if results is not None:
            prepare_results(results, run_id=plan.run_id, resume=plan.resume, user=plan.user)
        plan.mounts.check_sources()
        reap_run(client, plan.run_id)
        self.ensure_image(plan.image, observer)
        log_file = plan.mounts.host_path(plan.command.log_file) if plan.command.log_file else None
        monitor = JobMonitor(plan, observer, Redactor(plan.secrets), log_file=log_file)
        engine = str(client.api.base_url)
        if engine in _LIMITS_REFUSED:
            plan = _capped(plan, _LIMITS_REFUSED[engine], observer)
        started = self._start(client, plan)
        if isinstance(started, str):
            # Rootless and restricted engines may not raise RLIMIT_MEMLOCK (NVIDIA recommends
            # unlimited): a CPU smoke run or a smaller GPU job still works within the host's limit.
            # The engine's answer is remembered, so later jobs on it are created only once.
            _LIMITS_REFUSED[engine] = started
            plan = _capped(plan, started, observer)
            started = self._start(client, plan)
        assert not isinstance(started, str), "capped ulimits are never refused as too high"
        job, guard = started
        # Who else uses these GPUs, at the start and at the end (an OOM then says it was not alone).
        neighbours = gpu_neighbours(client, plan)
        try:
            outcome = supervise(job, monitor, cancel, self.policy)
        finally:
            guard.dismiss()
        outcome.gpu_neighbours = tuple(dict.fromkeys([*neighbours, *gpu_neighbours(client, plan)]))
        return outcome

    def _start(self, client, plan: LaunchPlan) -> "tuple[DockerJob, Watchdog] | str":
        """The started job and its watchdog, or the engine's refusal of the ulimits."""
        job = DockerJob(client, _create(client, plan))
        guard = Watchdog.start("container", job.container.id, *([self.engine_url] if self.engine_url else []))
        try:
            job.start(plan)
        except LimitRefused as refused:
            guard.dismiss()
            return str(refused)
        except BaseException:
            guard.dismiss()
            raise
        return job, guard

    def assign_gpus(self, plan: LaunchPlan, ids: tuple[int, ...] | None) -> LaunchPlan:
        """The container gets exactly GPUs `ids` (or, not booked, what the request names)."""
        return assign_container_gpus(plan, ids, self.gpu_handover)

    def evict(self, host: str, ids: tuple[int, ...]) -> list[str]:
        return evict_containers(self.engine(), host, ids)

    def with_policy(self, policy: StopPolicy) -> "DockerLauncher":
        return replace(self, policy=policy)

    def image_digest(self, image: str) -> str | None:
        """The image's registry digest (its local id if it was never pulled or pushed); None if unknown."""
        try:
            attrs = self.engine().images.get(image).attrs
        except Exception:  # noqa: BLE001 - a record of provenance, never a reason to fail a run
            return None
        digests = attrs.get("RepoDigests") or []
        return digests[0].rsplit("@", 1)[-1] if digests else attrs.get("Id")

    def ensure_image(self, image: str, observer: JobObserver | None = None) -> None:
        """Use the local image or pull it, reporting progress; a failed pull is ImageUnavailable."""
        docker = _docker()
        client = self.engine()
        try:
            client.images.get(image)
            return
        except docker.errors.ImageNotFound:
            pass
        repository, tag = docker.utils.parse_repository_tag(image)
        try:
            if self.registry_credentials_block:
                _login(client, self.registry_credentials_block)
            last = None
            for event in client.api.pull(repository, tag=tag or "latest", stream=True, decode=True):
                if "error" in event:
                    raise docker.errors.APIError(event["error"])
                text = " ".join(str(event[k]) for k in ("status", "id", "progress") if event.get(k))
                if observer and observer.on_pull and text != last:
                    observer.on_pull(text)
                last = text
            client.images.get(image)
        except (docker.errors.APIError, docker.errors.ImageNotFound) as exc:
            raise ImageUnavailable(
                f"the image {image} is not on this engine and could not be pulled: {_explain(exc)}",
                where=image,
                fix="check the registry is reachable and you are logged in (for nvcr.io: an NGC API key, "
                "given as a DockerRegistryCredentials block), or load the image with `docker load`",
            ) from None


def reap_run(client, run_id: str) -> int:
    """Remove containers an earlier attempt of this run left behind (killed flow, lost worker)."""
    stale = client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}"})
    for container in stale:
        _remove(container)
    return len(stale)


def _login(client, block_name: str) -> None:
    from prefect_docker import DockerRegistryCredentials

    credentials = DockerRegistryCredentials.load(block_name)
    client.login(
        username=credentials.username,
        password=credentials.password.get_secret_value(),
        registry=credentials.registry_url,
        reauth=credentials.reauth,
    )


def _explain(exc: Exception) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    return str(text).strip().splitlines()[0] if text else exc.__class__.__name__


def _create(client, plan: LaunchPlan):
    docker = _docker()
    kwargs: dict[str, Any] = dict(plan.docker_options)
    if plan.network_mode:
        kwargs["network_mode"] = plan.network_mode
    if plan.shm_size:
        kwargs["shm_size"] = plan.shm_size
    try:
        return client.containers.create(
            plan.image,
            command=list(plan.command.argv),
            name=f"taoflow-{plan.command.subtask.replace('_', '-')}-{uuid.uuid4().hex[:10]}",
            detach=True,
            labels=plan.labels,
            environment=dict(plan.env),
            user=plan.user,
            mounts=[
                docker.types.Mount(target=m.target, source=m.source, type="bind", read_only=m.read_only)
                for m in plan.mounts.mounts
            ],
            ulimits=[docker.types.Ulimit(name=n, soft=v, hard=v) for n, v in plan.ulimits],
            device_requests=[docker.types.DeviceRequest(**r) for r in plan.device_requests],
            **kwargs,
        )
    except docker.errors.APIError as exc:
        raise LaunchError(f"the engine refused to create the container: {_explain(exc)}", where=plan.image) from None


def _remove(container) -> None:
    """Remove a container; if the engine itself is gone, leave it to `reap_run` on the next attempt.

    Cleanup runs while another error is propagating (often EngineUnavailable): a second error
    from a dead engine must not replace that typed one.
    """
    docker = _docker()
    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        if "already in progress" not in str(exc):
            raise
    except (docker.errors.DockerException, OSError, _requests_errors()):
        pass


def _requests_errors() -> type[BaseException]:
    from requests.exceptions import ConnectionError as RequestsConnectionError

    return RequestsConnectionError


class LimitRefused(Exception):
    """The engine refused a ulimit above what it may grant (no CAP_SYS_RESOURCE)."""


#: Engines (by base URL) that refused NVIDIA's ulimits, with their words: asked once per process.
_LIMITS_REFUSED: dict[str, str] = {}


def _capped(plan: LaunchPlan, refusal: str, observer: JobObserver) -> LaunchPlan:
    capped = plan.with_options(ulimits=host_capped_ulimits(plan.ulimits))
    if observer.on_warning and capped.ulimits != plan.ulimits:
        observer.on_warning(
            f"the engine refused the ulimits {dict(plan.ulimits)} ({refusal}); running with "
            f"{dict(capped.ulimits)}, the host's hard limits. Set DockerOptions.ulimits in "
            "~/.tao_mounts.json (or the work pool's job variables) to choose them yourself."
        )
    return capped


_RLIMITS = {"memlock": resource.RLIMIT_MEMLOCK, "stack": resource.RLIMIT_STACK, "nofile": resource.RLIMIT_NOFILE}


def host_capped_ulimits(ulimits: tuple[tuple[str, int], ...]) -> tuple[tuple[str, int], ...]:
    """Each limit no higher than this host's hard limit (-1, unlimited, counts as the highest).

    >>> import resource
    >>> hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)[1]
    >>> host_capped_ulimits((("memlock", -1),)) == (("memlock", -1 if hard == resource.RLIM_INFINITY else hard),)
    True
    """
    capped = []
    for name, value in ulimits:
        limit = _RLIMITS.get(name)
        hard = resource.getrlimit(limit)[1] if limit is not None else resource.RLIM_INFINITY
        if hard != resource.RLIM_INFINITY and (value < 0 or value > hard):
            value = hard
        capped.append((name, value))
    return tuple(capped)


class DockerJob:
    """A created container, as the supervision loop sees it."""

    def __init__(self, client, container) -> None:
        self.client = client
        self.container = container
        self.lines: "queue.Queue[str | None]" = queue.Queue()

    def start(self, plan: LaunchPlan) -> None:
        docker = _docker()
        try:
            self.container.start()
        except docker.errors.APIError as exc:
            # The container exists already; a failed start must not leave it behind.
            self.cleanup()
            message = _explain(exc)
            if plan.device_requests and any(m in message for m in GPU_RUNTIME_MARKERS):
                raise GpuRuntimeMissing(
                    f"GPUs were requested but this Docker engine has no NVIDIA runtime ({message})",
                    where=str(self.client.api.base_url),
                    fix="install the NVIDIA Container Toolkit on the host and restart dockerd "
                    f"({NVIDIA_TOOLKIT_URL}); for a CPU-only smoke run set docker_gpus='none'",
                ) from None
            if "rlimit" in message:
                if plan.ulimits != host_capped_ulimits(plan.ulimits):
                    raise LimitRefused(message) from None
                raise LaunchError(
                    f"the engine may not apply the ulimits {dict(plan.ulimits)} ({message})",
                    where=plan.image,
                    fix="run dockerd with permission to raise limits (CAP_SYS_RESOURCE), or set lower "
                    "ulimits in ~/.tao_mounts.json DockerOptions, e.g. {\"memlock\": 8388608}",
                ) from None
            raise LaunchError(f"the container did not start: {message}", where=plan.image) from None
        pump_lines(self.container.logs(stream=True, follow=True), self.lines)

    def wait(self, timeout: float) -> int | None:
        import requests

        docker = _docker()
        try:
            return int(self.container.wait(timeout=timeout)["StatusCode"])
        except (requests.exceptions.ConnectionError, requests.exceptions.ReadTimeout) as exc:
            if "timed out" in str(exc).lower():
                return None
            raise EngineUnavailable(
                f"the Docker engine went away while the job ran ({exc.__class__.__name__})",
                fix="restart the engine; the retry resumes from the last checkpoint",
            ) from None
        except docker.errors.NotFound:
            raise EngineUnavailable("the job's container disappeared while it ran (removed outside taoflow)") from None

    def interrupt(self, pattern: str) -> None:
        # TAO's wrapper (PID 1) does not pass SIGUSR1 on, so signal the trainer itself.
        self.container.exec_run(["pkill", "-USR1", "-f", pattern], detach=False)

    def terminate(self, grace: float) -> None:
        self.container.stop(timeout=int(max(grace, 1)))

    def cleanup(self) -> None:
        _remove(self.container)
