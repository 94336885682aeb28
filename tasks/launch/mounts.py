"""What the container sees: bind mounts at the stable paths of `tasks.launch.slots`, and the
`~/.tao_mounts.json` of users coming from NVIDIA's `tao` launcher.

Inputs are mounted read-only, results read-write: a trainer that tries to write into its
dataset fails loudly instead of changing the user's data.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from tasks.errors import ConfigError, LaunchError, Problem
from tasks.launch.slots import SLOTS, Slot

DEFAULT_TAO_MOUNTS = "~/.tao_mounts.json"
#: The DockerOptions keys NVIDIA's launcher accepts (anything else is an error there too).
TAO_DOCKER_OPTIONS = {"user", "ports", "shm_size", "ulimits", "privileged", "network", "tty"}


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    read_only: bool = True

    def render(self) -> str:
        return f"{self.source} -> {self.target} ({'ro' if self.read_only else 'rw'})"


@dataclass(frozen=True)
class MountPlan:
    """Host directories bound into the container, and the translation between the two sides."""

    mounts: tuple[Mount, ...] = ()

    @classmethod
    def from_slots(cls, slots: Mapping[Slot | str, str | os.PathLike], extra: tuple[Mount, ...] = ()) -> "MountPlan":
        mounts = []
        for slot, host in slots.items():
            info = SLOTS[Slot(slot)]
            mounts.append(Mount(str(Path(host).resolve()), info.container_path, info.read_only))
        return cls(tuple(mounts) + tuple(extra))

    def host_path(self, container_path: str) -> Path | None:
        """The host path behind an in-container path (longest mount wins), or None if unmounted."""
        best: Mount | None = None
        for mount in self.mounts:
            target = mount.target.rstrip("/")
            if container_path == target or container_path.startswith(target + "/"):
                if best is None or len(target) > len(best.target.rstrip("/")):
                    best = mount
        if best is None:
            return None
        rest = container_path[len(best.target.rstrip("/")) :].lstrip("/")
        return Path(best.source) / rest if rest else Path(best.source)

    def check_sources(self) -> None:
        """Every input must exist before the engine sees it (docker's own error names no slot)."""
        missing = [
            Problem("missing-mount-source", f"{m.source} (for {m.target}) does not exist", file=m.source)
            for m in self.mounts
            if m.read_only and not Path(m.source).exists()
        ]
        if missing:
            raise LaunchError(
                f"{len(missing)} input folder(s) to mount are missing",
                problems=missing,
                fix="stage the inputs first (the flow's sync step) or correct the paths",
            )

    def render(self) -> list[str]:
        return [m.render() for m in self.mounts]


@dataclass(frozen=True)
class TaoMounts:
    """The content of a `~/.tao_mounts.json`."""

    mounts: tuple[Mount, ...] = ()
    envs: dict[str, str] = field(default_factory=dict)
    docker_options: dict[str, Any] = field(default_factory=dict)


def load_tao_mounts(path: str | os.PathLike | None = None) -> TaoMounts:
    """Read a `tao` launcher mounts file (LAUNCHER_MOUNTS or ~/.tao_mounts.json); absent -> empty.

    >>> import json, tempfile
    >>> path = tempfile.mktemp(suffix=".json")
    >>> _ = open(path, "w").write(json.dumps({"Envs": [{"variable": "CUDA_CACHE_DISABLE", "value": "1"}]}))
    >>> load_tao_mounts(path).envs
    {'CUDA_CACHE_DISABLE': '1'}
    """
    raw_path = path or os.environ.get("LAUNCHER_MOUNTS") or DEFAULT_TAO_MOUNTS
    file = Path(raw_path).expanduser()
    if not file.exists():
        if path is not None:
            raise ConfigError(f"{file} does not exist", where=str(file), fix="give the path of a .tao_mounts.json")
        return TaoMounts()
    try:
        data = json.loads(file.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"not valid JSON: {exc.msg}", where=f"{file}:{exc.lineno}:{exc.colno}", fix="correct the JSON syntax"
        ) from None
    problems: list[Problem] = []
    if not isinstance(data, dict):
        data = {}
        problems.append(Problem("bad-mounts-file", "the top level must be an object", file=str(file)))
    for key in set(data) - {"Mounts", "Envs", "DockerOptions"}:
        problems.append(Problem("unknown-key", f"unknown key {key!r}", file=str(file), hint="allowed: Mounts, Envs, DockerOptions"))
    mounts = []
    for i, entry in enumerate(data.get("Mounts", [])):
        source, target = (entry.get("source"), entry.get("destination")) if isinstance(entry, dict) else (None, None)
        if not source or not target:
            problems.append(Problem("bad-mount", f"Mounts[{i}] needs 'source' and 'destination'", file=str(file)))
            continue
        host = Path(source).expanduser().resolve()
        if not host.exists():
            problems.append(Problem("missing-mount-source", f"Mounts[{i}]: {host} does not exist", file=str(file)))
        # The tao launcher mounts everything read-write; we keep that for imported mounts.
        mounts.append(Mount(str(host), str(target), read_only=False))
    envs = {}
    for i, entry in enumerate(data.get("Envs", [])):
        if not isinstance(entry, dict) or "variable" not in entry:
            problems.append(Problem("bad-env", f"Envs[{i}] needs 'variable' and 'value'", file=str(file)))
            continue
        envs[str(entry["variable"])] = str(entry.get("value", ""))
    options = dict(data.get("DockerOptions", {}) or {})
    for key in set(options) - TAO_DOCKER_OPTIONS:
        problems.append(
            Problem("unknown-docker-option", f"DockerOptions.{key} is not supported", file=str(file),
                    hint=f"allowed: {', '.join(sorted(TAO_DOCKER_OPTIONS))}")
        )
    if problems:
        raise ConfigError(f"{len(problems)} problem(s) in {file}", problems=problems, fix="correct the entries listed above")
    return TaoMounts(tuple(mounts), envs, options)
