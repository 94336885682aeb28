"""Until tests/conftest.py registers tests.fixtures.docker_image, bring its fixture in here."""

from tests.fixtures.docker_image import standin_image  # noqa: F401
