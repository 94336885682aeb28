"""Can this machine really train? Asked before a run, so a demo or a plan can say why not in one line."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str


def docker_gpu_readiness(image: str, client=None) -> Readiness:
    """A Docker engine answers, it has the NVIDIA runtime, and the TAO image is present."""
    try:
        if client is None:
            import docker

            client = docker.from_env(timeout=10)
        info = client.info()
    except Exception as exc:  # noqa: BLE001 - any failure means "no usable engine"
        return Readiness(False, f"no Docker engine answers ({type(exc).__name__})")
    runtimes = set((info.get("Runtimes") or {}).keys())
    if "nvidia" not in runtimes and not info.get("CDISpecDirs"):
        return Readiness(False, "the Docker engine has no NVIDIA runtime (install the NVIDIA Container Toolkit)")
    try:
        client.images.get(image)
    except Exception:  # noqa: BLE001 - docker.errors.ImageNotFound or an API error
        return Readiness(False, f"the TAO image {image} is not on this machine (docker pull it after `docker login nvcr.io`)")
    return Readiness(True, "Docker engine with the NVIDIA runtime and the TAO image")
