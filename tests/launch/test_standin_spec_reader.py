"""The stand-in's spec reader (tests/standin/detectnet_v2/lib/spec_fields.awk) against TAO's own: every
value it reads from NVIDIA's real specs, with LF, CRLF and bare-CR line ends, is the value
`text_format.Merge` puts into NVIDIA's `_pb2` message after TAO's `open(path, "r").read()` --
with the host's awk and with busybox's (the image's); and the stand-in trainer on both launchers
trains what TAO would read from such a spec."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import uuid

import pytest

from tasks.launch import build_plan, export_command, run_export
from tasks.launch.slots import SPEC_FILE_NAME, Slot, container_path, container_spec_file
from tests.spec._specs import CONVERT_CLEAN, TRAIN_CLEAN, kind_of, spec_bytes
from tests.spec.tao_protos import tao_read
from tests.standin.image import BUSYBOX, STANDIN_DIR

READER = STANDIN_DIR / "detectnet_v2" / "lib" / "spec_fields.awk"
AWKS = {"host": ["awk"], "busybox": [str(BUSYBOX), "awk"]}


def _read(awk: list[str], data: bytes, tmp_path) -> list[tuple[str, str]]:
    spec = tmp_path / "spec.txt"
    spec.write_bytes(data)
    out = subprocess.run([*awk, "-f", str(READER), str(spec)], capture_output=True, check=True).stdout.decode()
    return [tuple(line.split("\t", 1)) for line in out.splitlines() if not line.endswith("\t{}")]


def _leaves(message, prefix: str = "") -> list[tuple[str, object]]:
    """(dotted path, value) of every scalar TAO's message holds, maps as their key/value entries."""
    out = []
    for fd, value in message.ListFields():
        path = prefix + fd.name
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            for key in value:
                out.append((f"{path}.key", key))
                if fd.message_type.fields_by_name["value"].message_type is not None:
                    out += _leaves(value[key], f"{path}.value.")
                else:
                    out.append((f"{path}.value", value[key]))
        elif fd.message_type is not None:
            for item in (value if _repeated(fd) else [value]):
                out += _leaves(item, path + ".")
        else:
            out += [(path, v) for v in (value if _repeated(fd) else [value])]
    return out


def _repeated(fd) -> bool:
    return fd.is_repeated if hasattr(fd, "is_repeated") else fd.label == fd.LABEL_REPEATED


def _field(descriptor, path: str):
    for name in path.split("."):
        fd = descriptor.fields_by_name[name]
        descriptor = fd.message_type
    return fd


def _canonical(value, fd):
    """A value as TAO holds it: the reader's text parsed by the field's type, or the message's value."""
    if fd.enum_type is not None:
        return fd.enum_type.values_by_number[value].name if isinstance(value, int) else value
    if fd.type == fd.TYPE_BOOL:
        return value if isinstance(value, bool) else value in ("true", "True", "t", "1")
    if fd.type == fd.TYPE_FLOAT:
        return struct.unpack("<f", struct.pack("<f", float(value)))[0]
    if fd.type == fd.TYPE_DOUBLE:
        return float(value)
    if fd.cpp_type in (fd.CPPTYPE_INT32, fd.CPPTYPE_INT64, fd.CPPTYPE_UINT32, fd.CPPTYPE_UINT64):
        return int(value)
    return value


@pytest.mark.parametrize("awk", list(AWKS))
@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
@pytest.mark.parametrize("name", TRAIN_CLEAN + CONVERT_CLEAN)
def test_the_standin_reads_a_spec_as_tao_does(name, eol, awk, tmp_path):
    if awk == "host" and shutil.which("awk") is None:
        pytest.fail("no awk on this host: the stand-in runs as a process with the host's awk")
    data = spec_bytes(name).replace(b"\r\n", b"\n").replace(b"\n", eol.encode())
    tao = tao_read(data, kind_of(name))
    assert tao.ok, tao.error
    root = tao.message.DESCRIPTOR
    theirs: dict[str, list] = {}
    for path, value in _leaves(tao.message):
        theirs.setdefault(path, []).append(_canonical(value, _field(root, path)))
    ours: dict[str, list] = {}
    for path, text in _read(AWKS[awk], data, tmp_path):
        ours.setdefault(path, []).append(_canonical(text, _field(root, path)))
    for path, values in ours.items():  # proto3: a field set to its default is not in TAO's message
        if path not in theirs:
            assert set(values) == {_canonical(_field(root, path).default_value, _field(root, path))}, path
    assert {p: sorted(map(repr, ours[p])) for p in theirs} == {p: sorted(map(repr, v)) for p, v in theirs.items()}


def test_the_standin_trainer_reads_a_bare_cr_spec_as_tao_does(harness):
    """Bare-CR line ends, one-line blocks, a comment with a brace, a value given twice: TAO trains 3
    epochs (the last num_epochs) of one class; a line-by-line reader found no num_epochs at all."""
    plan = harness.plan(epochs=3, name="model")
    (harness.root / "specs" / SPEC_FILE_NAME).write_bytes(
        b'dataset_config { target_class_mapping { key: "Car" value: "car" } }\r# training {\r'
        b'training_config { num_epochs: 5 checkpoint_interval: 1 num_epochs: 3 }\revaluation_config {\r'
        b'  validation_period_during_training: 1 first_validation_epoch: 1\r}\r')
    outcome = harness.launcher.run(plan)
    assert outcome.exit_code == 0
    results = plan.results_host_dir
    records = [json.loads(line) for line in (results / "status.json").read_text().splitlines()]
    assert records[-1]["status"] == "SUCCESS" and records[-1]["categorical"]["average_precision"].keys() == {"car"}
    assert sorted(p.name for p in results.glob("*.ckzip")) == [f"model.epoch-{e}.ckzip" for e in range(4)]


def test_the_standin_export_reads_a_bare_cr_spec_as_tao_does(harness):
    """export's labels.txt (cost_function_config's target classes, in order) and infer-dims
    (augmentation_config.preprocessing) from a bare-CR spec with one-line blocks and a commented-out class."""
    specs, model, out = harness.root / "specs", harness.root / "model", harness.root / "export"
    for folder in (specs, model, out):
        folder.mkdir(parents=True)
    (specs / SPEC_FILE_NAME).write_bytes(
        b'augmentation_config { preprocessing { output_image_width: 960 output_image_height: 544\r'
        b'  output_image_channel: 3 } }\rcost_function_config {\r  target_classes { name: "ellipse" }\r'
        b'  # target_classes { name: "square" }\r  target_classes {\r    name: "rectangle"\r  }\r}\r')
    (model / "m.hdf5").write_text("standin model after epoch 3\n")
    results = container_path(Slot.RESULTS)
    plan = build_plan(export_command(model=f"{container_path(Slot.BASE_MODEL)}/m.hdf5", output=f"{results}/m.onnx",
                                     spec=container_spec_file(), results_dir=results),
                      slots={Slot.SPEC: specs, Slot.BASE_MODEL: model, Slot.RESULTS: out}, run_id=uuid.uuid4().hex,
                      image=harness.image or "x", docker_gpus="none", user=harness.user, network_mode="none")
    exported = run_export(plan.with_options(ulimits=()), harness.launcher)
    assert exported.labels.read_text().split() == ["ellipse", "rectangle"]
    assert "infer-dims=3;544;960" in exported.nvinfer_config.read_text()
