"""Outputs stay under their prefix: hostile output names through every door a request has, and the
names that pass published for real (Azurite with a SAS in the output URL, and a local folder), with
everything outside OUTPUT/APP/SUBFOLDER compared before and after.

Doors: `TrainRequest.parse` (job mappings), `from_component_inputs` (the AzureML names), a job
file on disk (`load_config`), the deployments' JSON schema through Prefect's own validator (what
the server runs), and `join_location` under a request built without validation (the second net).
"""

from __future__ import annotations

import json
import posixpath
import uuid
from pathlib import Path

import pytest
from prefect.utilities.callables import parameter_schema
from prefect.utilities.schema_tools.validation import ValidationError, validate

from flows.deployment import retrain_detectnet_v2
from tasks.errors import ConfigError
from tasks.job.config import load_config
from tasks.job.request import TrainRequest
from tasks.storage import sync_up
from tests.job.test_request import HOSTILE_NAMES, request_fields, seed_inputs
from tests.reliability import ledger
from tests.reliability.test_secrets import account_sas

pytestmark = pytest.mark.services

NAMES = HOSTILE_NAMES + ["%2e%2e", "..%2f..", "\u2024\u2024", "\uff0e\uff0e", "a:b", "~", "$root", "a*b", "a|b",
                         "a;rm -rf", "x&sig=evil", "@x", "'x'", "a\tb", "\u202egnp.exe"]
#: Request field -> the AzureML component's input of the same meaning.
FIELDS = {"model_app_name": "model_app_name", "model_subfolder": "model_subfolder",
          "model_name": "name_string_for_the_model", "log_file": "log_file"}
#: Edge names that are allowed, published for real.
ACCEPTED = ["a..b", "v1.2", "run_7-x", "incoming-kitti-0412-20261125T020000Z", "Z" * 200]


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _schema() -> dict:
    return parameter_schema(retrain_detectnet_v2).model_dump_for_openapi()


def _doors(field: str, name: str, tmp_path: Path):
    """(door, callable) pairs; each callable builds a request with `name` in `field`, or raises."""
    mapping = request_fields(output="/out", **{field: name})
    inputs = seed_inputs(**{FIELDS[field]: name})
    job = tmp_path / f"job-{uuid.uuid4().hex[:8]}.yaml"

    def from_job_file():
        job.write_text(json.dumps(mapping), encoding="utf-8")  # JSON is YAML
        try:
            return load_config(job, env={}).request
        finally:
            job.unlink()

    def through_the_server_schema():
        validate({"request": mapping}, _schema(), raise_on_error=True)
        return TrainRequest.parse(mapping)  # the flow validates what the server let through (e.g. "x\n")

    def joined_without_validation():
        return TrainRequest.model_construct(**(TrainRequest.parse(request_fields(output="/out")).__dict__
                                               | {field: name}))

    doors = [("TrainRequest.parse", lambda: TrainRequest.parse(mapping)),
             ("component inputs", lambda: TrainRequest.from_component_inputs(inputs)),
             ("job file", from_job_file),
             ("deployment schema", through_the_server_schema)]
    if field in ("model_app_name", "model_subfolder"):  # the two that join_location puts into the results path
        doors.append(("join_location", joined_without_validation))
    return doors


def _inside(request: TrainRequest) -> bool:
    """Whether the results stay below the output and the files named in them inside the results."""
    results = posixpath.normpath(request.results_location.split("?")[0])
    if not results.startswith(posixpath.normpath(request.output.split("?")[0]) + "/"):
        return False
    leaves = [f"weights/{request.model_name}.hdf5", request.log_file or "train.log"]
    return all(posixpath.dirname(posixpath.normpath(posixpath.join(results, leaf))) in (results, f"{results}/weights")
               for leaf in leaves)


def test_hostile_output_names_are_refused_at_every_door_and_edge_names_publish_inside(
        tmp_path, azurite_env, blob_container):
    refused, escaped, accepted_inside, by_door = 0, [], 0, {}
    for field in FIELDS:
        for name in NAMES:
            for door, build in _doors(field, name, tmp_path):
                try:
                    request = build()
                    if door == "join_location":
                        request.results_location  # noqa: B018 - where the second net sits
                except (ConfigError, ValidationError) as exc:
                    refused += 1
                    by_door[door] = by_door.get(door, 0) + 1
                    text = exc.render() if isinstance(exc, ConfigError) else str(exc)
                    # The message states the allowed characters (a blank component input is "missing").
                    stated = "A-Z a-z 0-9 . _ -" in text or (not name.strip() and "missing" in text)
                    assert door in ("deployment schema", "join_location") or stated, text
                    continue
                if _inside(request):
                    accepted_inside += 1
                else:
                    escaped.append((field, name, door))

    # Names that pass, published for real: blob output with a SAS in its URL, and a local folder.
    results = tmp_path / "results"
    (results / "weights").mkdir(parents=True)
    (results / "status.json").write_text("{}")
    sas = account_sas()
    sentinels = {"models/keep.txt": b"outside", "keep.txt": b"root"}
    for blob, data in sentinels.items():
        blob_container.upload_blob(blob, data)
    local_out = tmp_path / "out"
    local_out.mkdir()
    (tmp_path / "outside.txt").write_text("outside")
    before = files_under(tmp_path)
    base = f"{azurite_env.blob_endpoint}/{blob_container.container_name}"
    published = 0
    for name in ACCEPTED:
        (results / "weights" / f"{name}.hdf5").write_bytes(b"weights")
        for output in (f"{base}/models?{sas}", str(local_out)):
            request = TrainRequest.parse(request_fields(output=output, model_app_name=name, model_subfolder=name,
                                                        model_name=name))
            sync_up(results, request.results_location)
            published += 1
        (results / "weights" / f"{name}.hdf5").unlink()
    blobs = {b.name for b in blob_container.list_blobs()}
    outside = sorted(b for b in blobs - set(sentinels)
                     if not any(b.startswith(f"models/{n}/{n}/") for n in ACCEPTED))
    escaped += [("blob", b, "published") for b in outside]
    for blob, data in sentinels.items():
        assert blob_container.download_blob(blob).readall() == data
    after = files_under(tmp_path)
    changed = {p for p in set(before) | set(after) if before.get(p) != after.get(p)}
    escaped += [("file", p, "published") for p in sorted(changed)
                if not any(p.startswith(f"out/{n}/{n}/") for n in ACCEPTED) and not p.startswith("results/")]
    for name in ACCEPTED:
        assert f"models/{name}/{name}/weights/{name}.hdf5" in blobs
        assert (local_out / name / name / "weights" / f"{name}.hdf5").is_file()

    trials = refused + accepted_inside + published
    ledger.record("output-names", trials=trials, leaked=len(escaped), refused=refused,
                  accepted_inside=accepted_inside, published_inside=published,
                  refused_by_door="; ".join(f"{d} {n}" for d, n in sorted(by_door.items())))
    assert escaped == [], escaped
    assert refused >= len(NAMES) * len(FIELDS) * 4, by_door  # each door refuses (nearly) every hostile name
