"""NVIDIA's own spec parser for the tests: the `_pb2` modules of nvidia-tao-deploy and `text_format.Merge`.

`scripts/test` fetches them (`ensure_tao_protos` in scripts/lib.sh) into .cache/tao-protos, with the
pure-Python protobuf 3.20.3 beside them. `tao_read` reads a spec exactly as TAO's `load_proto` does:
`open(path, "r").read()` (UTF-8, universal newlines) and `text_format.Merge` into a fresh message.
`OldProtobuf` does the same with protobuf 3.20.3 in a child process (it cannot share a process with the
current protobuf). Missing modules fail the test under TAOFLOW_REQUIRE_SERVICES=1 (scripts/test, CI).
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tests.fixtures.services import service_missing

ROOT = Path(__file__).resolve().parents[2]
PROTOS = Path(os.environ.get("TAOFLOW_TAO_PROTOS") or ROOT / ".cache/tao-protos/nvidia-tao-deploy-7.3.0")
OLD_PROTOBUF = Path(os.environ.get("TAOFLOW_PROTOBUF_320") or ROOT / ".cache/tao-protos/protobuf-3.20.3")
_PROTO_PACKAGE = "nvidia_tao_deploy.cv.detectnet_v2.proto"
_MISSING = "NVIDIA's DetectNet_v2 _pb2 modules (nvidia-tao-deploy, fetched by scripts/test into .cache/tao-protos)"


def tao_modules() -> SimpleNamespace:
    """`experiment_pb2`, `dataset_export_config_pb2` and `text_format`, or the test fails/skips."""
    if not (PROTOS / _PROTO_PACKAGE.replace(".", "/") / "experiment_pb2.py").is_file():
        service_missing(_MISSING)
    try:
        from google.protobuf import text_format
    except ImportError:
        service_missing("the protobuf package (the `test` extra of pyproject.toml)")
    if str(PROTOS) not in sys.path:
        sys.path.insert(0, str(PROTOS))
    from nvidia_tao_deploy.cv.detectnet_v2.proto import dataset_export_config_pb2, experiment_pb2

    return SimpleNamespace(experiment_pb2=experiment_pb2, dataset_export_config_pb2=dataset_export_config_pb2,
                           text_format=text_format)


def message_class(kind: str) -> Any:
    mods = tao_modules()
    return mods.experiment_pb2.Experiment if kind == "train" else mods.dataset_export_config_pb2.DatasetExportConfig


@dataclass
class TaoResult:
    message: Any | None  # the message TAO builds, None when it refuses the spec
    error: str | None
    serialized: bytes | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def tao_read(data: bytes, kind: str) -> TaoResult:
    """What TAO (the current protobuf) makes of a spec file's bytes."""
    text_format = tao_modules().text_format
    try:
        text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline=None).read()
        message = message_class(kind)()
        text_format.Merge(text, message)
    except Exception as exc:  # noqa: BLE001 - whatever Merge raises, TAO stops there
        return TaoResult(None, f"{type(exc).__name__}: {exc}")
    return TaoResult(message, None, message.SerializeToString(deterministic=True))


_WORKER = r"""
import base64, io, json, sys
from google.protobuf import text_format
from nvidia_tao_deploy.cv.detectnet_v2.proto import experiment_pb2, dataset_export_config_pb2
import google.protobuf
assert google.protobuf.__version__.startswith("3.20"), google.protobuf.__version__
for line in sys.stdin:
    case = json.loads(line)
    cls = experiment_pb2.Experiment if case["kind"] == "train" else dataset_export_config_pb2.DatasetExportConfig
    try:
        text = io.TextIOWrapper(io.BytesIO(base64.b64decode(case["data"])), encoding="utf-8", newline=None).read()
        message = cls()
        text_format.Merge(text, message)
        out = {"ok": base64.b64encode(message.SerializeToString(deterministic=True)).decode()}
    except Exception as exc:
        out = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(out), flush=True)
"""


class OldProtobuf:
    """Protobuf 3.20.3 (pure Python) reading specs in one child process, for many cases in one call."""

    def __init__(self) -> None:
        if not (OLD_PROTOBUF / "google/protobuf/text_format.py").is_file():
            service_missing("protobuf 3.20.3 (fetched by scripts/test into .cache/tao-protos)")
        tao_modules()

    def read_all(self, cases: list[tuple[bytes, str]]) -> list[TaoResult]:
        env = {**os.environ, "PYTHONPATH": f"{OLD_PROTOBUF}{os.pathsep}{PROTOS}",
               "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}
        lines = "".join(json.dumps({"kind": k, "data": base64.b64encode(d).decode()}) + "\n" for d, k in cases)
        # -S: no site-packages, so the venv's current protobuf cannot shadow 3.20.3
        proc = subprocess.run([sys.executable, "-S", "-c", _WORKER], input=lines, capture_output=True, text=True,
                              env=env, timeout=1800, check=False)
        assert proc.returncode == 0, proc.stderr[-2000:]
        results = []
        for line in proc.stdout.splitlines():
            out = json.loads(line)
            if "ok" in out:
                results.append(TaoResult(None, None, base64.b64decode(out["ok"])))
            else:
                results.append(TaoResult(None, out["error"]))
        assert len(results) == len(cases)
        return results
