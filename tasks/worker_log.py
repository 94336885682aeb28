"""The docker worker's word on a run it could not start: one message, what and how to fix, no traceback.

When prefect-docker's worker cannot start a flow run's container (the job image is missing and
cannot be pulled, the engine has no NVIDIA runtime for the GPU request, ...), Prefect's worker logs
"Failed to submit flow run ... to infrastructure." with the exception's traceback on the run's
logger, then "Reported flow run ... as crashed: <the same error>". The run's logs in the UI then
show a stack of prefect-docker and docker-py frames around an engine message.

`SubmissionFailureFilter` sits on that logger (`prefect.flow_runs.worker`) in the worker's logging
configuration, `deployments/worker-logging.yml`: a failure raised by Docker (docker-py's errors, or
prefect-docker's "Docker pull failed for ...") becomes one record, the engine's message with what
to do, and the repeat in the crash report is dropped; the run's state message (Prefect's) still
names the error. Any other exception keeps its traceback: that is a bug, not a setting.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qs

from tasks.launch.docker import GPU_RUNTIME_MARKERS, NVIDIA_TOOLKIT_URL

SUBMIT_FAILED = "Failed to submit flow run"
_PULL_FAILED = re.compile(r"Docker pull failed for (?P<image>\S+): ")
_NO_SUCH_IMAGE = re.compile(r"No such image: (?P<image>[^\s\"')]+)")
_IMAGE_MARKERS = ("pull access denied", "manifest unknown", "repository does not exist", "not found: manifest")


def submission_failure_text(error: BaseException) -> str | None:
    """What a Docker error that stopped a run's container means and how to fix it; None if not Docker's.

    >>> what, fix = submission_failure_text(RuntimeError("Docker pull failed for taoflow/job:1: denied")).splitlines()
    >>> what
    'the job image taoflow/job:1 is not on this Docker host and could not be pulled (denied)'
    >>> fix[:71]
    '  how to fix: build it on this host (scripts/job-image -t taoflow/job:1'
    >>> from docker.errors import APIError
    >>> refused = APIError("500 Server Error for http+docker://localhost/v1.41/images/create?tag=1&fromImage="
    ...                    "r.example%2Fjob: Internal Server Error", explanation="Get https://r.example/v2/: refused")
    >>> submission_failure_text(refused).splitlines()[0][:62]
    'the job image r.example/job:1 is not on this Docker host and c'
    >>> submission_failure_text(KeyError("x")) is None
    True
    """
    message = " ".join(str(getattr(error, "explanation", None) or error).split())
    pulled = _PULL_FAILED.match(message)
    if pulled is None and not type(error).__module__.startswith("docker."):
        return None
    image = pulled["image"] if pulled else _pulled_image(str(error)) or _no_such_image(message)
    if image or any(marker in message for marker in _IMAGE_MARKERS):
        image = image or "of this run"
        detail = message[pulled.end():] if pulled else message
        return (f"the job image {image} is not on this Docker host and could not be pulled ({detail})\n"
                f"  how to fix: build it on this host (scripts/job-image -t {image}, docs/deploy.md \"The job "
                "image\"), or push it to a registry this host can pull from; the pool's or the deployment's "
                "`image` job variable names it")
    if any(marker in message for marker in GPU_RUNTIME_MARKERS):
        return (f"the job container asks for GPUs and this Docker engine has no NVIDIA runtime ({message})\n"
                f"  how to fix: install the NVIDIA Container Toolkit on this host and restart dockerd "
                f"({NVIDIA_TOOLKIT_URL}); for a CPU smoke run, give the run container_create_kwargs without "
                "device_requests and request.docker_gpus: none")
    return (f"the Docker engine refused the job container ({message})\n"
            "  how to fix: check the pool's and the deployment's job variables (docs/deploy.md \"Work pools\")")


def _pulled_image(text: str) -> str | None:
    """The image of a failed pull request (docker-py's error quotes its URL, .../images/create?...)."""
    found = re.search(r"/images/create\?(\S+?):? ", text)
    if found is None:
        return None
    query = parse_qs(found[1])
    name, tag = query.get("fromImage", [""])[0], query.get("tag", [""])[0]
    return f"{name}:{tag}" if name and tag else name or None


def _no_such_image(message: str) -> str | None:
    found = _NO_SUCH_IMAGE.search(message)
    return found["image"] if found else None


class SubmissionFailureFilter(logging.Filter):
    """On `prefect.flow_runs.worker`: a Docker failure to start a run's container, once, without traceback.

    >>> import logging, sys
    >>> try:
    ...     raise RuntimeError("Docker pull failed for taoflow/job:1: manifest unknown")
    ... except RuntimeError:
    ...     record = logging.LogRecord("prefect.flow_runs.worker", 40, "f", 1,
    ...                                "Failed to submit flow run 'r' to infrastructure.", (), sys.exc_info())
    >>> f = SubmissionFailureFilter(); f.filter(record), record.exc_info, record.getMessage().splitlines()[0][:81]
    (True, None, "Failed to submit flow run 'r' to infrastructure: the job image taoflow/job:1 is n")
    >>> crashed = ("Reported flow run 'x' as crashed: Failed to submit flow run to infrastructure: "
    ...            "RuntimeError: Docker pull failed for taoflow/job:1: manifest unknown")
    >>> f.filter(logging.LogRecord("prefect.flow_runs.worker", 20, "f", 1, crashed, (), None))
    False
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not isinstance(record.msg, str):
            return True
        if record.exc_info and record.msg.startswith(SUBMIT_FAILED):
            text = submission_failure_text(record.exc_info[1])
            if text is not None:
                record.msg, record.args = f"{record.getMessage().rstrip('.')}: {text}", ()
                record.exc_info, record.exc_text = None, None
            return True
        # Prefect's next line repeats the error (its crash message): said once already.
        message = record.getMessage()
        return not (message.startswith("Reported flow run") and f"as crashed: {SUBMIT_FAILED}" in message
                    and _is_docker_failure(message))


def _is_docker_failure(message: str) -> bool:
    """Whether a crash report quotes an error `submission_failure_text` explains (docker-py's or a pull's)."""
    docker_error = r"to infrastructure: (APIError|ImageNotFound|NotFound|DockerException|ContainerError)\b"
    return "Docker pull failed for" in message or re.search(docker_error, message) is not None
