"""Config files for `taoflow run` / `taoflow plan`: YAML that mirrors `TrainRequest`, or the
AzureML component's flat input names (told apart automatically).

Relative local paths are resolved against the config file's folder, so a config and its data
can move together. The key never has to sit in the file: env `TAO_KEY` or a Prefect Secret
block (`key_block`) are the intended routes, and a plain-text key draws a warning.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml
from pydantic import SecretStr

from tasks.errors import ConfigError
from tasks.job.request import COMPONENT_INPUTS, COMPONENT_OUTPUTS, TrainRequest

KEY_ENV = "TAO_KEY"

#: Names that only the seed component uses: one of them means "flat component inputs".
_COMPONENT_ONLY = (set(COMPONENT_INPUTS) | set(COMPONENT_OUTPUTS)) - set(TrainRequest.model_fields)


@dataclass
class LoadedConfig:
    request: TrainRequest
    form: Literal["request", "component"]
    source: str
    warnings: list[str] = field(default_factory=list)


def load_config(path: str | Path, sets: list[str] | tuple[str, ...] = (), *, env: Mapping[str, str] | None = None) -> LoadedConfig:
    r"""Read, override (`--set a.b=value`), resolve and validate a config file.

    >>> import tempfile
    >>> job = Path(tempfile.mkdtemp()) / "job.yaml"
    >>> _ = job.write_text("model_app_name: app\nnum_epochs: 3\nspec: train.txt\noutput: models\nmodel_subfolder: r1\n"
    ...     "training_data: {location: data, spec_reference: /ws/data}\n"
    ...     "training_tfrecords: {location: tfr, spec_reference: /ws/tfr}\n"
    ...     "base_model: {location: model, spec_reference: /ws/model}\n")
    >>> load_config(job, ["num_epochs=5"]).request.num_epochs
    5
    """
    env = os.environ if env is None else env
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {source} does not exist", fix="give the path of a YAML config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {source}: {exc}") from None
    data, lines = parse_yaml(text, source)
    for item in sets:
        apply_set(data, item)
    return load_mapping(data, source=source, lines=lines, base_dir=path.parent, env=env)


def load_mapping(
    data: dict[str, Any],
    *,
    source: str,
    lines: Mapping[str, int] | None = None,
    base_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> LoadedConfig:
    env = os.environ if env is None else env
    warnings: list[str] = []
    form: Literal["request", "component"] = "component" if _COMPONENT_ONLY & set(data) else "request"
    if data.get("key"):
        warnings.append(
            f"{source}: the TAO key is written in the file in plain text; prefer env {KEY_ENV} "
            "or a Prefect Secret block (key_block)"
        )
    if form == "component":
        request = TrainRequest.from_component_inputs(data, source=source, lines=lines)
    else:
        request = TrainRequest.parse(data, source=source, lines=lines)
    request = with_env_key(request, env)
    if base_dir is not None:
        request = resolve_local_paths(request, base_dir)
    return LoadedConfig(request=request, form=form, source=source, warnings=warnings)


def with_env_key(request: TrainRequest, env: Mapping[str, str] | None = None) -> TrainRequest:
    """The request with the key from env TAO_KEY when it names neither a key nor a key_block.

    Used by `taoflow run` and by deployment runs (whose parameters never carry the key).

    >>> from tasks.job.request import EXAMPLE
    >>> with_env_key(TrainRequest.model_validate(EXAMPLE), {"TAO_KEY": "k"}).key.get_secret_value()
    'k'
    """
    env = os.environ if env is None else env
    if request.key is None and not request.key_block and env.get(KEY_ENV):
        return request.model_copy(update={"key": SecretStr(env[KEY_ENV])})
    return request


def resolve_local_paths(request: TrainRequest, base_dir: Path) -> TrainRequest:
    """Make relative local locations absolute against the config's folder; URLs stay as they are."""

    def fix(location: str | None) -> str | None:
        if location is None or "://" in location or location.startswith("~"):
            return os.path.expanduser(location) if location else location
        return str((base_dir / location).resolve()) if not os.path.isabs(location) else location

    updates: dict[str, Any] = {"spec": fix(request.spec), "output": fix(request.output)}
    if request.dataset_convert_spec:
        updates["dataset_convert_spec"] = fix(request.dataset_convert_spec)
    for name, binding in request.bindings().items():
        updates[name] = binding.model_copy(update={"location": fix(binding.location)})
    return request.model_copy(update=updates)


def parse_yaml(text: str, source: str) -> tuple[dict[str, Any], dict[str, int]]:
    """YAML to a mapping plus the line of every dotted key path (for errors that point at lines)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise ConfigError(
            f"{source} is not valid YAML: {exc.problem}",
            where=f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source,
            fix="fix the YAML syntax at that place (indentation, a missing colon or quote)",
        ) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise ConfigError(
            f"{source} holds a character YAML does not allow (code {exc.character!r})",
            where=f"{source}:{line}:{column}",
            fix="remove the control character at that place",
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML: {exc}", where=source) from None
    if data is None:
        raise ConfigError(f"config file {source} is empty", fix="see specs/demo.yaml for a complete example")
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: the top level must be a mapping of field names to values, not {type(data).__name__}",
            where=source,
        )
    lines: dict[str, int] = {}
    _collect_lines(node, "", lines)
    return data, lines


def _collect_lines(node: yaml.Node | None, prefix: str, out: dict[str, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = f"{prefix}{key_node.value}"
            out[key] = key_node.start_mark.line + 1
            _collect_lines(value_node, key + ".", out)


def apply_set(data: dict[str, Any], item: str) -> None:
    """Apply one `--set dotted.path=value` (the value read as a YAML scalar: 3, true, text)."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r} is not of the form FIELD=VALUE", fix="e.g. --set num_epochs=3")
    dotted, raw = item.split("=", 1)
    keys = [k for k in dotted.strip().split(".") if k]
    if not keys:
        raise ConfigError(f"--set {item!r} names no field", fix="e.g. --set training_data.location=/data/train")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    target = data
    for key in keys[:-1]:
        current = target.get(key)
        if current is None:
            current = target[key] = {}
        if not isinstance(current, dict):
            raise ConfigError(f"--set {item!r}: {key!r} is a value, not a group of fields")
        target = current
    target[keys[-1]] = value
