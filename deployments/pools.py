"""The work pools `prefect.yaml` deploys to, and the commands that create them.

`python -m deployments.pools` prints the `prefect work-pool create` commands; with `--create`
it runs them (idempotent: `--overwrite`). The templates in `deployments/work-pools/` started as
each worker's `get_default_base_job_template()` with taoflow's defaults filled in (image, GPUs,
shared memory, node pool); `tests/deployments/test_work_pools.py` renders them through the
installed workers so a template a worker cannot load never ships.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent / "work-pools"


@dataclass(frozen=True)
class WorkPool:
    """A work pool: its name in prefect.yaml, its worker type and its base job template."""

    name: str
    type: str
    description: str
    template: str | None = None  # file name in work-pools/; None: the worker's default

    @property
    def template_path(self) -> Path | None:
        return TEMPLATES / self.template if self.template else None

    def base_job_template(self) -> dict | None:
        path = self.template_path
        return json.loads(path.read_text()) if path else None

    def create_command(self, prefect: str = "prefect") -> list[str]:
        command = [prefect, "work-pool", "create", self.name, "--type", self.type, "--overwrite"]
        if self.template_path:
            command += ["--base-job-template", str(self.template_path)]
        return command


POOLS: tuple[WorkPool, ...] = (
    WorkPool("gpu-process", "process", "A GPU host: the flow runs as a process and starts TAO with Docker."),
    WorkPool("gpu-docker", "docker", "A Docker GPU host: the job container is the TAO job image.", "gpu-docker.json"),
    WorkPool("aks-gpu", "kubernetes", "AKS: a Job on the GPU node pool, nvidia.com/gpu requested.", "aks-gpu.json"),
    WorkPool("aci-gpu", "azure-container-instance", "Azure Container Instances with a GPU SKU.", "aci-gpu.json"),
)


def pool(name: str) -> WorkPool:
    return next(p for p in POOLS if p.name == name)


def main(argv: list[str]) -> int:
    prefect = str(Path(sys.executable).with_name("prefect"))
    for item in POOLS:
        command = item.create_command(prefect if "--create" in argv else "prefect")
        print(" ".join(command))
        if "--create" in argv:
            subprocess.run(command, check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
