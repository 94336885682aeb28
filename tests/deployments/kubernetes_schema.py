"""A manifest checked strictly against the official Kubernetes client's models (generated from the API's
OpenAPI document): every field must exist where it stands, with its type. The client's own
deserializer would silently drop an unknown field, and so would an API server that only warns; a
field in the wrong place (a Job's `completions` in its Pod template) then has no effect at all.
"""

from __future__ import annotations

import re

import kubernetes.client as k8s

_LIST = re.compile(r"^[Ll]ist\[(?P<item>.+)\]$")
_DICT = re.compile(r"^[Dd]ict\[str, (?P<value>.+)\]$|^dict\(str, (?P<old>.+)\)$")
_PRIMITIVES = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,), "bytes": (str,),
               "datetime": (str,), "date": (str,), "object": (object,)}
#: Resource quantities: the client types them `str`, the API takes a number too (`Quantity` is
#: "string or number" in the API's OpenAPI v3 document), as prefect-kubernetes sends `{{ gpu_count }}`.
_QUANTITIES = {("V1ResourceRequirements", "limits"), ("V1ResourceRequirements", "requests")}


def violations(value, type_name: str, path: str = "$") -> list[str]:
    """Where `value` does not match the model `type_name` (e.g. "V1Job"); [] when it does."""
    if found := _LIST.match(type_name):
        if not isinstance(value, list):
            return [f"{path}: a list expected, got {type(value).__name__}"]
        return [v for i, item in enumerate(value) for v in violations(item, found["item"], f"{path}[{i}]")]
    if found := _DICT.match(type_name):
        if not isinstance(value, dict):
            return [f"{path}: an object expected, got {type(value).__name__}"]
        inner = found["value"] or found["old"]
        return [v for key, item in value.items() for v in violations(item, inner, f"{path}.{key}")]
    if type_name in _PRIMITIVES:
        kinds = _PRIMITIVES[type_name]
        wrong = not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds and object not in kinds)
        return [f"{path}: {type_name} expected, got {value!r}"] if wrong else []
    model = getattr(k8s, type_name)
    if not isinstance(value, dict):
        return [f"{path}: a {type_name} object expected, got {type(value).__name__}"]
    fields = {json_key: attr for attr, json_key in model.attribute_map.items()}
    found: list[str] = []
    for key, item in value.items():
        if key not in fields:
            found.append(f"{path}.{key}: no such field in {type_name}")
            continue
        inner = model.openapi_types[fields[key]]
        if (type_name, fields[key]) in _QUANTITIES:
            item = {name: str(q) if isinstance(q, int) and not isinstance(q, bool) else q
                    for name, q in item.items()} if isinstance(item, dict) else item
        found += violations(item, inner, f"{path}.{key}")
    return found


def as_model(manifest: dict, type_name: str):
    """The manifest as the client's model (pydantic: required fields and types enforced), e.g. a `V1Job`."""
    return getattr(k8s, type_name).from_dict(_quantities_as_text(manifest))


def _quantities_as_text(value):
    if isinstance(value, list):
        return [_quantities_as_text(item) for item in value]
    if not isinstance(value, dict):
        return value
    out = {key: _quantities_as_text(item) for key, item in value.items()}
    for key in ("limits", "requests"):
        if isinstance(out.get(key), dict):
            out[key] = {name: str(q) if isinstance(q, int) and not isinstance(q, bool) else q
                        for name, q in out[key].items()}
    return out
