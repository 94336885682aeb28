"""Fixtures of the deployment tests: one real Prefect server for the package, deployed from prefect.yaml."""

from __future__ import annotations

import shutil

import pytest

from deployments.pools import POOLS
from tests.deployments.server import running_server
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
    for pool in POOLS:
        created = prefect_server.prefect(*pool.create_command()[1:])
        assert created.returncode == 0, f"{pool.name}: {created.stdout}\n{created.stderr}"
    result = prefect_server.prefect("--no-prompt", "deploy", "--all")
    assert result.returncode == 0, f"prefect deploy --all failed:\n{result.stdout}\n{result.stderr}"
    found = prefect_server.post("/deployments/filter", {}).json()
    return {d["name"]: d for d in found}
