"""Test session set-up: an isolated Prefect home and the real-service fixtures.

Settings are exported before anything imports Prefect, so every test (and every subprocess
it starts) talks to this session's own ephemeral API and never to a developer's profile.
"""

from __future__ import annotations

import os
import tempfile

_SESSION_HOME = tempfile.mkdtemp(prefix="taoflow-test-prefect-")
for _name, _value in {
    "PREFECT_HOME": _SESSION_HOME,
    "PREFECT_PROFILES_PATH": os.path.join(_SESSION_HOME, "profiles.toml"),
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    "PREFECT_UI_ENABLED": "false",
    "DO_NOT_TRACK": "1",
}.items():
    os.environ.setdefault(_name, _value)
# A developer's PREFECT_API_URL must not leak into the tests.
os.environ.pop("PREFECT_API_URL", None)

pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.docker_image",
]
