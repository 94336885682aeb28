"""The launcher tests' shared fixture: each case on the real dockerd with the stand-in image AND
on the stand-in script run as a process, so both backends face the very same cases."""

from __future__ import annotations

import pytest

from tests.launch.harness import docker_harness, process_harness


@pytest.fixture(params=["docker", "process"])
def harness(request, workdir):
    if request.param == "docker":
        return docker_harness(workdir, request.getfixturevalue("docker_client"), request.getfixturevalue("standin_image"))
    return process_harness(workdir)
