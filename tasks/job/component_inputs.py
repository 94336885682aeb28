"""The AzureML "TAO DetectNet_v2 train" component's flat inputs, mapped onto `TrainRequest` fields
with the seed's own rules (`results = trained_model_dir/model_app_name/model_subfolder`, the base
model under `base_model_dir/model_app_name/base_model_subdir`, ...), every problem collected
before one `ConfigError` lists them all.

The input names are `COMPONENT_INPUTS` below; `TrainRequest.from_component_inputs` is the entry
point: it maps them here, then validates the fields (so this module never needs the request).
"""

from __future__ import annotations

from typing import Any, Mapping

from tasks.errors import Problem
from tasks.job.field_problems import unknown_field_problem
from tasks.job.request_fields import join_location, join_problem

#: Input names of the seed component, exactly as its README lists them, plus its output binding.
COMPONENT_INPUTS: tuple[str, ...] = (
    "model_app_name",
    "num_epochs",
    "training_data_dir",
    "training_data_subdir",
    "specfile_reference_training_data_dir",
    "validation_data_dir",
    "validation_data_subdir",
    "specfile_reference_validation_data_dir",
    "training_tf_records_dir",
    "training_tf_records_subdir",
    "specfile_reference_training_tf_records_dir",
    "validation_tf_records_dir",
    "validation_tf_records_subdir",
    "specfile_reference_validation_tf_records_dir",
    "base_model_dir",
    "base_model_subdir",
    "specfile_reference_model_dir",
    "original_specs",
    "specs_file",
    "num_gpus",
    "key",
    "name_string_for_the_model",
    "model_subfolder",
    "gpu_index",
    "use_amp",
    "log_file",
)
COMPONENT_OUTPUTS: tuple[str, ...] = ("trained_model_dir",)
#: Ours, not the seed's: accepted beside the seed's names.
COMPONENT_EXTRAS: tuple[str, ...] = (
    "image",
    "docker_gpus",
    "key_block",
    "resume",
    "dataset_convert_spec",
    "storage_credentials",
    "launcher",
)

_REQUIRED_COMPONENT = (
    "model_app_name",
    "num_epochs",
    "training_data_dir",
    "specfile_reference_training_data_dir",
    "training_tf_records_dir",
    "specfile_reference_training_tf_records_dir",
    "base_model_dir",
    "specfile_reference_model_dir",
    "original_specs",
    "specs_file",
    "model_subfolder",
    "trained_model_dir",
)

# (slot field, dir input, subdir input, reference input, app-name segment in between?)
_COMPONENT_BINDINGS = (
    ("training_data", "training_data_dir", "training_data_subdir", "specfile_reference_training_data_dir", False),
    ("validation_data", "validation_data_dir", "validation_data_subdir", "specfile_reference_validation_data_dir", False),
    (
        "training_tfrecords",
        "training_tf_records_dir",
        "training_tf_records_subdir",
        "specfile_reference_training_tf_records_dir",
        False,
    ),
    (
        "validation_tfrecords",
        "validation_tf_records_dir",
        "validation_tf_records_subdir",
        "specfile_reference_validation_tf_records_dir",
        False,
    ),
    ("base_model", "base_model_dir", "base_model_subdir", "specfile_reference_model_dir", True),
)


def map_component_inputs(
    inputs: Mapping[str, Any], *, source: str = "component inputs", lines: Mapping[str, int] | None = None
) -> tuple[dict[str, Any], list[Problem]]:
    """The seed's flat inputs as `TrainRequest` fields, and every problem of the mapping.

    >>> fields, problems = map_component_inputs({"trained_model_dir": "az://models", "model_app_name": "parking"})
    >>> fields
    {'model_app_name': 'parking', 'output': 'az://models'}
    >>> [p.code for p in problems][:2]
    ['missing-input', 'missing-input']
    """
    lines = lines or {}
    known = set(COMPONENT_INPUTS) | set(COMPONENT_OUTPUTS) | set(COMPONENT_EXTRAS)
    problems: list[Problem] = []

    def add(code: str, message: str, line: int | None, hint: str | None) -> None:
        problems.append(Problem(code, message, file=source, line=line, hint=hint))

    values = {k: _blank_to_none(v) for k, v in inputs.items()}
    for name in inputs:
        if name not in known:
            problems.append(unknown_field_problem(name, known, source, lines.get(name)))
    for name in _REQUIRED_COMPONENT:
        if values.get(name) is None:
            add("missing-input", f"required input {name!r} is missing or empty", lines.get(name), _hint(name))
    app = values.get("model_app_name")
    fields: dict[str, Any] = {}

    def joined(base: Any, *named: tuple[str, Any]) -> str | None:
        """`base` joined with the named inputs, or None (with a problem each) if one is unsafe."""
        bad = [(name, why) for name, value in named if value is not None and (why := join_problem(str(value)))]
        for name, why in bad:
            if name != "model_app_name":  # its own field check reports it, with the allowed characters
                add("unsafe-path", f"{name}: {why}", lines.get(name), "give a relative folder name below the input's folder")
        return None if bad else join_location(str(base), *(str(v) for _, v in named if v is not None))

    for slot, dir_key, sub_key, ref_key, with_app in _COMPONENT_BINDINGS:
        base, sub, ref = values.get(dir_key), values.get(sub_key), values.get(ref_key)
        if base is None:
            if sub is not None or ref is not None:
                given = ", ".join(k for k, v in ((sub_key, sub), (ref_key, ref)) if v is not None)
                add("incomplete-binding", f"{given} given but {dir_key!r} is missing",
                    lines.get(sub_key) or lines.get(ref_key), f"set {dir_key} or drop {given}")
            continue
        if ref is None:
            if dir_key not in _REQUIRED_COMPONENT:
                add("incomplete-binding", f"{dir_key!r} given but {ref_key!r} (the path in the spec it replaces) is missing",
                    lines.get(dir_key), f"set {ref_key} to the path your spec uses for this data")
            continue
        location = joined(base, *((("model_app_name", app),) if with_app else ()), (sub_key, sub))
        if location is not None:
            fields[slot] = {"location": location, "spec_reference": str(ref)}
    if values.get("original_specs") is not None and values.get("specs_file") is not None:
        spec = joined(values["original_specs"], ("specs_file", values["specs_file"]))
        if spec is not None:
            fields["spec"] = spec
    simple = _COMPONENT_SIMPLE
    for src, dst in simple.items():
        if values.get(src) is not None:
            fields[dst] = values[src]
    if "use_amp" in fields:
        fields["use_amp"] = _parse_bool(fields["use_amp"])
    if "resume" in fields:
        fields["resume"] = _parse_bool(fields["resume"])
    return fields, problems


#: Seed inputs that map one-to-one onto a request field.
_COMPONENT_SIMPLE = {
    "model_app_name": "model_app_name",
    "num_epochs": "num_epochs",
    "model_subfolder": "model_subfolder",
    "trained_model_dir": "output",
    "name_string_for_the_model": "model_name",
    "num_gpus": "num_gpus",
    "gpu_index": "gpu_index",
    "use_amp": "use_amp",
    "log_file": "log_file",
    "key": "key",
    "image": "image",
    "docker_gpus": "docker_gpus",
    "key_block": "key_block",
    "resume": "resume",
    "dataset_convert_spec": "dataset_convert_spec",
    "storage_credentials": "storage_credentials",
    "launcher": "launcher",
}


def component_lines(lines: Mapping[str, int]) -> dict[str, int]:
    """Line numbers of the seed's inputs, re-keyed by the request fields they become."""
    out = {dst: lines[src] for src, dst in _COMPONENT_SIMPLE.items() if src in lines}
    for slot, dir_key, _sub, _ref, _app in _COMPONENT_BINDINGS:
        if dir_key in lines:
            out[slot] = lines[dir_key]
    if "original_specs" in lines:
        out["spec"] = lines["original_specs"]
    return out


def _parse_bool(value: Any) -> Any:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in {"true", "1", "yes", "on"}:
            return True
        if lowered in {"false", "0", "no", "off", ""}:
            return False
    return value


def _blank_to_none(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _hint(name: str) -> str | None:
    hints = {
        "trained_model_dir": "the component's output binding: where trained models are published",
        "num_epochs": "for a quick experiment use 3-5, for a good model 120+",
        "original_specs": "the folder holding the spec file",
        "specs_file": "the spec file name inside original_specs",
    }
    return hints.get(name)


