"""Fixtures of the deployment tests: one real Prefect server for the package, deployed from prefect.yaml."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import pytest

from tests.deployments.job_image import build_job_image, host_python_image
from tests.deployments.server import REPO, running_server
from tests.flow.conftest import demo_data, engine_env  # noqa: F401 - a trained sweep's data and engine settings


@pytest.fixture(scope="package")
def prefect_server(tmp_path_factory):
    home = tmp_path_factory.mktemp("prefect-server")
    with running_server(home) as server:
        yield server
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def deployed(prefect_server) -> dict[str, dict]:
    """Work pools created, then `prefect deploy --all` from the repository's prefect.yaml.

    Returns the deployments read back through the API, by name.
    """
    created = subprocess.run([sys.executable, "-m", "deployments.pools", "--create"], env=prefect_server.env(),
                             cwd=REPO, capture_output=True, text=True, timeout=300)
    assert created.returncode == 0, created.stdout + created.stderr
    result = prefect_server.prefect("--no-prompt", "deploy", "--all")
    assert result.returncode == 0, f"prefect deploy --all failed:\n{result.stdout}\n{result.stderr}"
    found = prefect_server.post("/deployments/filter", {}).json()
    return {d["name"]: d for d in found}


@pytest.fixture(scope="session")
def job_image(docker_client, standin_image, tmp_path_factory) -> str:
    """deployments/Dockerfile built on the stand-in TAO image and this machine's Python, nothing
    pulled (tests/deployments/job_image.py); once per change of what goes in."""
    started = time.monotonic()
    tag = build_job_image(standin_image, host_python_image(docker_client),
                          tmp_path_factory.mktemp("job-image") / "build.log")
    print(f"\njob image {tag}: ready in {time.monotonic() - started:.0f} s")
    return tag
