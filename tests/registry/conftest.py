"""Fixtures of the registry tests."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["local", "blob"])
def app(request, tmp_path):
    """An application's registry (OUTPUT/MODEL_APP_NAME) on a local folder and on real Azurite."""
    if request.param == "local":
        return str(tmp_path / "models" / "shapes")
    azurite = request.getfixturevalue("azurite_env")
    container = request.getfixturevalue("blob_container")
    return f"{azurite.blob_endpoint}/{container.container_name}/models/shapes"
