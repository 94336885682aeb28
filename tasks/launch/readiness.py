"""Can this machine really train? Asked before a run, so a demo or a plan can list what is missing."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Readiness:
    """Every missing piece, each with how to get it; ready when there is none."""

    missing: tuple[str, ...]

    @property
    def ready(self) -> bool:
        return not self.missing


def docker_gpu_readiness(image: str, client=None) -> Readiness:
    """A Docker engine answers, it has the NVIDIA runtime, and the TAO image is present: all that is
    missing, not only the first (without an engine, the other two cannot be asked and are listed too).
    """
    try:
        if client is None:
            import docker

            client = docker.from_env(timeout=10)
        info = client.info()
    except Exception as exc:  # noqa: BLE001 - any failure means "no usable engine"
        return Readiness((
            f"no Docker engine answers ({type(exc).__name__}): install Docker and start it",
            "the NVIDIA runtime in that engine (install the NVIDIA Container Toolkit)",
            f"the TAO image {image} in that engine (docker pull it after `docker login nvcr.io`)",
        ))
    missing = []
    runtimes = set((info.get("Runtimes") or {}).keys())
    if "nvidia" not in runtimes and not info.get("CDISpecDirs"):
        missing.append("the Docker engine has no NVIDIA runtime (install the NVIDIA Container Toolkit)")
    try:
        client.images.get(image)
    except Exception:  # noqa: BLE001 - docker.errors.ImageNotFound or an API error
        missing.append(f"the TAO image {image} is not on this machine (docker pull it after `docker login nvcr.io`)")
    return Readiness(tuple(missing))
