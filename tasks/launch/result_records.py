"""Step results as JSON records, so a step reused from its folder gives back the very result object
the flow would have got from running it (`tasks.job.step_cache` stores them in `step.json`).

A record holds every field of the result: paths relative to the step's results folder (the record
stays true wherever the folder is found), numbers finite, the epoch and validation events as
objects. The results folder is resolved as the launcher's mounts resolve it
(`MountPlan.from_slots`), so a path a judge returned and the same path read back are equal.

Reading one back is strict, as for anything taoflow did not just write itself: a path that climbs
out of the results folder (`..`, absolute), a number that is not finite, a missing or unknown
field, a value of another type, another kind of result: one `RecordError` naming the field, and
the caller treats the record as absent (the step runs again).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from tasks.launch.engine_build import EngineResult
from tasks.launch.evaluation import EvaluationResult
from tasks.launch.judge import TrainResult
from tasks.launch.prune_export import ExportResult, PruneResult

Result = TrainResult | PruneResult | ExportResult | EngineResult | EvaluationResult
R = TypeVar("R", TrainResult, PruneResult, ExportResult, EngineResult, EvaluationResult)

#: Each result's artifacts: the files the step made for what comes after it (the model, the ONNX
#: and DeepStream's files, the engine, the calibration cache), never status.json or checkpoints.
ARTIFACT_FIELDS: dict[type, tuple[str, ...]] = {
    TrainResult: ("model_path",),
    PruneResult: ("model_path",),
    ExportResult: ("onnx", "labels", "nvinfer_config", "engine", "cal_cache"),
    EngineResult: ("engine", "cal_cache"),
    EvaluationResult: (),
}
_KINDS = {kind.__name__: kind for kind in ARTIFACT_FIELDS}


class RecordError(ValueError):
    """A step record that is not one taoflow wrote for this result: `where` names the field."""

    def __init__(self, where: str, what: str) -> None:
        super().__init__(f"step record {where}: {what}")
        self.where = where


def inside(folder: Path, relative: Any, where: str = "path") -> Path:
    """`folder / relative` for a relative POSIX path that stays in `folder`; `RecordError` otherwise.

    >>> inside(Path("/r"), "weights/detector.hdf5")
    PosixPath('/r/weights/detector.hdf5')
    >>> inside(Path("/r"), "../other/detector.hdf5")
    Traceback (most recent call last):
    ...
    tasks.launch.result_records.RecordError: step record path: '../other/detector.hdf5' climbs out of the results...
    """
    if not isinstance(relative, str) or not relative or "\x00" in relative:
        raise RecordError(where, f"{relative!r} is not a path")
    path = PurePosixPath(relative)
    if path.is_absolute() or ".." in path.parts:
        raise RecordError(where, f"{relative!r} climbs out of the results folder")
    return folder.joinpath(*path.parts)


def relative_inside(path: Path, folder: Path, where: str = "path") -> str:
    """`path` relative to `folder` (resolved or as given), as a POSIX path; `RecordError` when it
    lies elsewhere: a record holds only what the step wrote into its own folder.

    >>> relative_inside(Path("/r/weights/detector.hdf5"), Path("/r")), relative_inside(Path("/r"), Path("/r"))
    ('weights/detector.hdf5', '.')
    """
    for base in (folder, folder.resolve()):
        try:
            relative = Path(path).relative_to(base)
        except ValueError:
            continue
        if ".." not in relative.parts:
            return relative.as_posix()
    raise RecordError(where, f"{path} is not inside the results folder {folder}")


def to_record(result: Result, results_dir: Path) -> dict:
    """The JSON-ready record of `result`, its paths relative to `results_dir`.

    >>> record = to_record(PruneResult(Path("/r/pruned.hdf5"), 0.2868, 1.5, 0.9), Path("/r"))
    >>> record["kind"], record["fields"]["model_path"], record["fields"]["pruning_ratio"]
    ('PruneResult', 'pruned.hdf5', 0.2868)
    """
    kind = type(result)
    if kind not in ARTIFACT_FIELDS:
        raise TypeError(f"no step record for a {kind.__name__}")
    return {"kind": kind.__name__, "fields": _encode(result, kind, results_dir.resolve(), kind.__name__)}


def from_record(kind: type[R], record: Any, results_dir: Path) -> R:
    """The `kind` result a record describes, its paths under `results_dir`; `RecordError` for a
    record that is not one (see the module doc).

    >>> result = PruneResult(Path("/r/pruned.hdf5"), 0.2868, 1.5, 0.9)
    >>> from_record(PruneResult, to_record(result, Path("/r")), Path("/r")) == result
    True
    >>> record = to_record(result, Path("/r"))
    >>> record["fields"]["model_path"] = "/etc/passwd"
    >>> from_record(PruneResult, record, Path("/r"))
    Traceback (most recent call last):
    ...
    tasks.launch.result_records.RecordError: step record PruneResult.model_path: '/etc/passwd' climbs out...
    """
    if not isinstance(record, dict) or record.keys() != {"kind", "fields"}:
        raise RecordError(kind.__name__, "not a step record (it needs exactly 'kind' and 'fields')")
    if not isinstance(record["kind"], str) or _KINDS.get(record["kind"]) is not kind:
        raise RecordError(kind.__name__, f"records a {record['kind']!r}, not a {kind.__name__}")
    return _decode(record["fields"], kind, results_dir.resolve(), kind.__name__)


def artifacts_of(result: Result) -> dict[str, Path]:
    """The files `result`'s step made for the steps after it, by field name (what a step record
    hashes): the model, the ONNX, labels.txt, nvinfer_config.txt, the engine, the calibration cache.

    >>> artifacts_of(ExportResult(Path("/r/detector.onnx"), labels=Path("/r/labels.txt")))
    {'onnx': PosixPath('/r/detector.onnx'), 'labels': PosixPath('/r/labels.txt')}
    """
    found = {name: getattr(result, name) for name in ARTIFACT_FIELDS[type(result)]}
    return {name: path for name, path in found.items() if path is not None}


@functools.cache
def _hints(kind: type) -> dict[str, Any]:
    return typing.get_type_hints(kind)


def _optional(hint: Any) -> Any | None:
    """X for `X | None`, else None."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return next(arg for arg in typing.get_args(hint) if arg is not type(None))
    return None


def _encode(value: Any, hint: Any, folder: Path, where: str) -> Any:
    if (inner := _optional(hint)) is not None:
        return None if value is None else _encode(value, inner, folder, where)
    if dataclasses.is_dataclass(hint):
        return {f.name: _encode(getattr(value, f.name), _hints(hint)[f.name], folder, f"{where}.{f.name}")
                for f in dataclasses.fields(hint)}
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (list, tuple):
        return [_encode(item, args[0], folder, f"{where}[{i}]") for i, item in enumerate(value)]
    if origin is dict:
        return {str(k): _encode(v, args[1], folder, f"{where}[{k!r}]") for k, v in value.items()}
    if hint is Path:
        return relative_inside(value, folder, where)
    if hint is float and not math.isfinite(value):
        raise RecordError(where, f"{value} is not a finite number")
    return value


def _decode(raw: Any, hint: Any, folder: Path, where: str) -> Any:
    if (inner := _optional(hint)) is not None:
        return None if raw is None else _decode(raw, inner, folder, where)
    if dataclasses.is_dataclass(hint):
        return _decode_fields(raw, hint, folder, where)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (list, tuple):
        items = [_decode(item, args[0], folder, f"{where}[{i}]") for i, item in enumerate(_expect(raw, list, where))]
        return items if origin is list else tuple(items)
    if origin is dict:
        return {_expect(k, str, where): _decode(v, args[1], folder, f"{where}[{k!r}]")
                for k, v in _expect(raw, dict, where).items()}
    if hint is Path:
        return inside(folder, raw, where)
    if hint is float:
        number = float(_expect(raw, (int, float), where))
        if not math.isfinite(number):
            raise RecordError(where, f"{raw} is not a finite number")
        return number
    return _expect(raw, hint, where)


def _decode_fields(raw: Any, kind: type, folder: Path, where: str) -> Any:
    names = {f.name for f in dataclasses.fields(kind)}
    given = _expect(raw, dict, where)
    if given.keys() != names:
        odd = sorted(names - given.keys()) or sorted(given.keys() - names)
        raise RecordError(where, f"{'lacks' if names - given.keys() else 'has unknown'} field(s) {', '.join(odd)}")
    hints = _hints(kind)
    return kind(**{name: _decode(given[name], hints[name], folder, f"{where}.{name}") for name in names})


def _expect(raw: Any, wanted: type | tuple[type, ...], where: str) -> Any:
    if isinstance(raw, bool) or not isinstance(raw, wanted):
        names = "/".join(t.__name__ for t in (wanted if isinstance(wanted, tuple) else (wanted,)))
        raise RecordError(where, f"expected {names}, found {type(raw).__name__} {raw!r:.60}")
    return raw
