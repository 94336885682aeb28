"""The `detectnet_v2 prune` and `export` command lines (TAO's TF1 image) and TAO Deploy's
`detectnet_v2 gen_trt_engine`, as argv lists, with the traps of NVIDIA's code caught before a
container starts (`docs/chain.md` lists the facts with NVIDIA's file names):

- prune saves `<-o>.hdf5` when `-o` lacks the suffix and then fails looking for `-o` itself, exit 255
  after the work is done (`cv/common/magnet_prune.py`, `tao-traces/prune/no_hdf5_suffix`);
- export refuses an existing output file, exit 255 (`cv/common/export/app.py`, `tao-traces/export/
  output_exists`); it calibrates INT8 only while building an engine (`--engine_file`), and its default
  calibration cache is `./cal.bin` in the container's working folder (`keras_exporter.py`, `app.py`);
- gen_trt_engine builds nothing without `--engine_file` and still says SUCCESS; INT8 without
  `--cal_cache_file` fails on `os.path.exists(None)`; an existing cache is reused, not recomputed;
  `--cal_data_file` finds no image in 7.3.0 (`tests/standin/deploy_traces/`);
- TAO's wrappers run the script through `bash -c '…'`: a path with a space is split.

Paths are in-container paths; every file a step writes lies in its results folder, so a retry finds
its own leftovers there and a new run never shares them (`prepare_outputs`).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tasks.errors import ConfigError, LaunchError
from tasks.files import DIR, path_kind
from tasks.launch.command import Command
from tasks.launch.plan import LaunchPlan
from tasks.launch.results import RUN_MARKER, read_untrusted

DataType = Literal["fp32", "fp16", "int8"]
DATA_TYPES = ("fp32", "fp16", "int8")
EQUALIZATIONS = ("union", "intersection", "arithmetic_mean", "geometric_mean")
NORMALIZERS = ("max", "L2")
ONNX_ROUTES = ("tf2onnx", "keras2onnx")
#: What `gen_trt_engine -m` accepts (`nvidia_tao_deploy/utils/decoding.py: decode_model`).
DEPLOY_MODEL_SUFFIXES = (".onnx", ".etlt", ".uff")
#: export's --gen_ds_config writes these beside the .onnx (`keras_exporter.py`).
DS_CONFIG_FILES = ("labels.txt", "nvinfer_config.txt")


@dataclass(frozen=True)
class PruneOptions:
    """prune's knobs; the defaults are NVIDIA's notebook's (`-eq union -pth 0.0000052`) and, for the
    flags it leaves out, `magnet_prune.py`'s."""

    threshold: float = 5.2e-6  # -pth
    equalization: str = "union"  # -eq
    normalizer: str = "max"  # -n
    granularity: int = 8  # -pg
    min_num_filters: int = 16  # -nf
    excluded_layers: tuple[str, ...] = ()  # -el


@dataclass(frozen=True)
class Int8Calibration:
    """INT8 calibration: `batches` x `batch_size` images from `image_dir` (None: the spec's training
    images), the cache written to `cache_file`, or read from it when an earlier step wrote it (`reuse`)."""

    cache_file: str
    batches: int = 10
    batch_size: int = 4
    image_dir: str | None = None
    reuse: bool = False

    @property
    def images(self) -> int:
        return self.batches * self.batch_size


@dataclass(frozen=True)
class BatchSizes:
    """The engine's optimization profile for the dynamic batch of TAO's ONNX (NVIDIA's notebook: max 64)."""

    min: int = 1
    opt: int = 1
    max: int = 64


@dataclass(frozen=True)
class ChainCommand(Command):
    """A prune, export or gen_trt_engine invocation and what it must leave behind."""

    #: The file the step is for: the pruned .hdf5, the .onnx, the engine (in-container).
    artifact: str = ""
    #: Every file the step writes, the artifact first; none may be there before it starts.
    outputs: tuple[str, ...] = ()
    data_type: DataType = "fp32"
    engine_file: str | None = None
    calibration: Int8Calibration | None = None
    #: export --gen_ds_config: labels.txt and nvinfer_config.txt beside the .onnx.
    ds_config: bool = False


def _path(flag: str, path: str | None, subtask: str) -> str:
    if not path or not path.startswith("/"):
        raise ConfigError(f"{subtask} {flag} must be an absolute in-container path, got {path!r}",
                          where=f"{subtask} {flag}", fix="give the path inside the container")
    if any(ch.isspace() for ch in path):
        raise ConfigError(f"{subtask} {flag} {path!r} holds a blank: TAO's wrapper passes its arguments through "
                          "`bash -c`, which splits the path", where=f"{subtask} {flag}",
                          fix="use a path without blanks (the flow's folder names never have any)")
    return path


def _inside(flag: str, path: str, results_dir: str, subtask: str) -> str:
    folder = posixpath.normpath(results_dir)
    if not posixpath.normpath(path).startswith(folder.rstrip("/") + "/"):
        raise ConfigError(f"{subtask} {flag} {path} is not inside the results folder {results_dir}",
                          where=f"{subtask} {flag}",
                          fix="write every output into the step's own results folder, so a retry finds its own "
                              "leftovers and another run never shares them")
    return path


def _count(name: str, value: int, subtask: str, least: int = 1) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ConfigError(f"{subtask} {name} must be a whole number >= {least}, got {value!r}",
                          where=f"{subtask} {name}")
    return str(value)


def _command(argv: list[str], results: str, model: str, key: str | None, key_reason: str | None,
             gpu_index: int | None, **declared) -> ChainCommand:
    """The command with the key (for an encrypted model only: TAO 5's .hdf5 and .onnx need none, and export
    would write it into nvinfer_config.txt as `tlt-model-key=`, keras_exporter.py: generate_ds_config) and
    the wrapper's GPU index appended. One GPU: TAO's wrappers allow more only for train."""
    key = key if key and model.endswith((".tlt", ".etlt")) else None
    if key:
        argv += ["-k", key]
    if gpu_index is not None:
        argv += ["--gpu_index", _count("--gpu_index", gpu_index, "the wrapper", least=0)]
    return ChainCommand(subtask=argv[1], argv=tuple(argv), results_dir=results, model=model, num_gpus=1,
                        secrets=(key,) if key else (), key_reason=key_reason if key else None, **declared)


def prune_command(*, model: str, output: str, results_dir: str, options: PruneOptions = PruneOptions(),
                  key: str | None = None, key_reason: str | None = None, gpu_index: int | None = None) -> ChainCommand:
    """`detectnet_v2 prune -m MODEL -o OUTPUT.hdf5 --results_dir R -pth -eq -n -pg -nf [-el …] [-k] [--gpu_index]`.

    >>> prune_command(model="/m/model.hdf5", output="/r/pruned.hdf5", results_dir="/r").display_argv()[2:8]
    ['-m', '/m/model.hdf5', '-o', '/r/pruned.hdf5', '--results_dir', '/r']
    >>> prune_command(model="/m/model.hdf5", output="/r/pruned.tlt", results_dir="/r")
    Traceback (most recent call last):
    tasks.errors.ConfigError: prune -o: prune -o /r/pruned.tlt does not end in .hdf5: ...
    """
    where = "prune -o"
    if not output.endswith(".hdf5"):
        raise ConfigError(f"prune -o {output} does not end in .hdf5: TAO saves {output}.hdf5 and then fails looking "
                          f"for {output} itself (exit 255, after the pruning is done)", where=where,
                          fix="name the pruned model ….hdf5 (TAO 5 writes plain .hdf5)")
    if options.equalization not in EQUALIZATIONS or options.normalizer not in NORMALIZERS:
        raise ConfigError(f"prune -eq {options.equalization!r} / -n {options.normalizer!r}: magnet_prune.py asserts "
                          "on these after loading the model", where="prune -eq/-n",
                          fix=f"-eq one of {', '.join(EQUALIZATIONS)}; -n one of {', '.join(NORMALIZERS)}")
    if not options.threshold >= 0:
        raise ConfigError(f"prune -pth must be >= 0, got {options.threshold!r}", where="prune -pth")
    results = _path("--results_dir", results_dir, "prune")
    argv = ["detectnet_v2", "prune", "-m", _path("-m", model, "prune"),
            "-o", _inside("-o", _path("-o", output, "prune"), results, "prune"), "--results_dir", results,
            "-pth", repr(float(options.threshold)), "-eq", options.equalization, "-n", options.normalizer,
            "-pg", _count("-pg", options.granularity, "prune"), "-nf", _count("-nf", options.min_num_filters, "prune")]
    if options.excluded_layers:
        argv += ["-el", *options.excluded_layers]
    return _command(argv, results, model, key, key_reason, gpu_index, artifact=output, outputs=(output,))


def export_command(*, model: str, output: str, spec: str, results_dir: str, gen_ds_config: bool = True,
                   onnx_route: str = "tf2onnx", data_type: DataType = "fp32", engine_file: str | None = None,
                   calibration: Int8Calibration | None = None, key: str | None = None, key_reason: str | None = None,
                   gpu_index: int | None = None) -> ChainCommand:
    """`detectnet_v2 export -m MODEL -o OUT.onnx -e SPEC --results_dir R [--gen_ds_config] --onnx_route ROUTE
    [--data_type T --engine_file E [--cal_cache_file C --batches N --batch_size B [--cal_image_dir D]]]`.

    TAO 5 writes unencrypted ONNX only; `data_type` fp16/int8 also builds a TensorRT engine in the TAO
    image, and int8 calibrates while doing so (the cache is what DeepStream needs beside the ONNX).

    >>> export_command(model="/m/r.hdf5", output="/x/r.onnx", spec="/s.txt", results_dir="/x").display_argv()[8:]
    ['--results_dir', '/x', '--onnx_route', 'tf2onnx', '--gen_ds_config']
    """
    if not output.endswith(".onnx"):
        raise ConfigError(f"export -o {output} does not end in .onnx: TAO appends .onnx and the flow would not find it",
                          where="export -o", fix="name the exported model ….onnx")
    if data_type not in DATA_TYPES:
        raise ConfigError(f"export --data_type must be one of {DATA_TYPES}, got {data_type!r}",
                          where="export --data_type")
    if onnx_route not in ONNX_ROUTES:
        raise ConfigError(f"export --onnx_route must be one of {ONNX_ROUTES} (keras_exporter.py asserts it after "
                          f"loading the spec), got {onnx_route!r}", where="export --onnx_route")
    results = _path("--results_dir", results_dir, "export")
    argv = ["detectnet_v2", "export", "-m", _path("-m", model, "export"),
            "-o", _inside("-o", _path("-o", output, "export"), results, "export"), "-e", _path("-e", spec, "export"),
            "--results_dir", results, "--onnx_route", onnx_route]
    outputs = [output]
    if gen_ds_config:
        argv.append("--gen_ds_config")
        outputs += [posixpath.join(posixpath.dirname(output), name) for name in DS_CONFIG_FILES]
    if data_type != "fp32" or engine_file:
        if not engine_file:
            raise ConfigError(f"export --data_type {data_type} builds nothing without --engine_file, and INT8 "
                              "calibrates only while an engine is built (keras_exporter.py)",
                              where="export --engine_file",
                              fix="give an engine file, or export fp32 (ONNX only) and build the engine with TAO "
                                  "Deploy")
        argv += ["--data_type", data_type, "--engine_file", _inside("--engine_file", _path(
            "--engine_file", engine_file, "export"), results, "export")]
        outputs.append(engine_file)
    argv += _calibration_args("export", data_type, calibration, results, outputs)
    return _command(argv, results, model, key, key_reason, gpu_index, artifact=output, outputs=tuple(outputs),
                    data_type=data_type, engine_file=engine_file, ds_config=gen_ds_config,
                    calibration=calibration if data_type == "int8" else None)


def gen_trt_engine_command(*, model: str, spec: str, results_dir: str, engine_file: str, data_type: DataType = "int8",
                           calibration: Int8Calibration | None = None, batch_sizes: BatchSizes = BatchSizes(),
                           key: str | None = None, gpu_index: int | None = None) -> ChainCommand:
    """TAO Deploy's `detectnet_v2 gen_trt_engine -m MODEL.onnx -e SPEC -r R --data_type T --engine_file E
    --min/opt/max_batch_size [--cal_cache_file C --batches N --batch_size B [--cal_image_dir D]]`.

    >>> gen_trt_engine_command(model="/x/r.onnx", spec="/s.txt", results_dir="/e", engine_file="/e/r.engine",
    ...     data_type="fp16").display_argv()[8:12]
    ['--data_type', 'fp16', '--engine_file', '/e/r.engine']
    """
    if not model.endswith(DEPLOY_MODEL_SUFFIXES):
        raise ConfigError(f"gen_trt_engine -m {model}: TAO Deploy reads only {', '.join(DEPLOY_MODEL_SUFFIXES)} "
                          "(\"Feature not implemented\")", where="gen_trt_engine -m", fix="give the exported .onnx")
    if data_type not in DATA_TYPES:
        raise ConfigError(f"gen_trt_engine --data_type must be one of {DATA_TYPES}, got {data_type!r}",
                          where="gen_trt_engine --data_type")
    if not engine_file:
        raise ConfigError("gen_trt_engine without --engine_file builds nothing and still ends SUCCESS",
                          where="gen_trt_engine --engine_file", fix="give the engine file to write")
    sizes = [_count(f"--{name}_batch_size", size, "gen_trt_engine")
             for name, size in (("min", batch_sizes.min), ("opt", batch_sizes.opt), ("max", batch_sizes.max))]
    if not batch_sizes.min <= batch_sizes.opt <= batch_sizes.max:
        raise ConfigError(f"gen_trt_engine batch sizes must grow: min {batch_sizes.min} <= opt {batch_sizes.opt} <= "
                          f"max {batch_sizes.max}", where="gen_trt_engine --min/opt/max_batch_size")
    results = _path("-r", results_dir, "gen_trt_engine")
    engine = _inside("--engine_file", _path("--engine_file", engine_file, "gen_trt_engine"), results, "gen_trt_engine")
    argv = ["detectnet_v2", "gen_trt_engine", "-m", _path("-m", model, "gen_trt_engine"),
            "-e", _path("-e", spec, "gen_trt_engine"), "-r", results, "--data_type", data_type, "--engine_file", engine,
            "--min_batch_size", sizes[0], "--opt_batch_size", sizes[1], "--max_batch_size", sizes[2]]
    outputs = [engine]
    argv += _calibration_args("gen_trt_engine", data_type, calibration, results, outputs)
    return _command(argv, results, model, key, "the model is encrypted", gpu_index, artifact=engine,
                    outputs=tuple(outputs), data_type=data_type, engine_file=engine,
                    calibration=calibration if data_type == "int8" else None)


def _calibration_args(subtask: str, data_type: str, calibration: Int8Calibration | None, results: str,
                      outputs: list[str]) -> list[str]:
    if data_type != "int8":
        return []
    if calibration is None:
        raise ConfigError(f"{subtask} --data_type int8 needs a calibration cache file",
                          where=f"{subtask} --cal_cache_file",
                          fix="give the calibration settings (the cache file, batches, batch size)")
    cache = _path("--cal_cache_file", calibration.cache_file, subtask)
    args = ["--cal_cache_file", cache]
    if not calibration.reuse:
        outputs.append(_inside("--cal_cache_file", cache, results, subtask))
        args += ["--batches", _count("--batches", calibration.batches, subtask),
                 "--batch_size", _count("--batch_size", calibration.batch_size, subtask)]
        if calibration.image_dir:
            args += ["--cal_image_dir", _path("--cal_image_dir", calibration.image_dir, subtask)]
    return args


def chain_command(plan: LaunchPlan) -> ChainCommand:
    """The plan's command, which must be one of this module's."""
    if not isinstance(plan.command, ChainCommand):
        raise TypeError(f"a {plan.command.subtask} plan built without chain_commands")
    return plan.command


def prepare_outputs(plan: LaunchPlan) -> list[Path]:
    """Before the container starts: refuse outputs another run left (export would fail on them after
    loading the model, gen_trt_engine would reuse a calibration cache of another model); remove this
    run's own, left by an earlier attempt of the same step. Returns what was removed.

    >>> from tasks.launch.mounts import MountPlan
    >>> prepare_outputs(LaunchPlan(prune_command(model="/m/a.hdf5", output="/nowhere/p.hdf5",
    ...     results_dir="/nowhere"), MountPlan(), "run-1"))
    []
    """
    command = chain_command(plan)
    results = plan.results_host_dir
    found = [(path, host) for path in command.outputs
             if (host := plan.mounts.host_path(path)) is not None and path_kind(str(host)) is not None]
    if not found or results is None:
        return []
    marker = read_untrusted(results / RUN_MARKER, limit=256)
    owner = marker.data.decode("utf-8", "replace").strip() if marker else None
    # A step folder serves every run with the same inputs (`resume`): what an earlier attempt left is its own.
    if owner != plan.run_id and not plan.resume:
        path, host = found[0]
        raise LaunchError(
            f"{command.subtask} would write {path}, which already exists (left by "
            f"{'run ' + owner if owner else 'an unknown run'}): " + _why_not(command.subtask),
            where=str(host), fix="use a new results folder (model_subfolder) for a new run, or remove the file")
    for _, host in found:
        if path_kind(str(host)) == DIR:
            raise LaunchError(f"{host.name} is a folder where {command.subtask} writes a file", where=str(host),
                              fix="remove it")
        host.unlink(missing_ok=True)  # a link is removed, never followed
    return [host for _, host in found]


def _why_not(subtask: str) -> str:
    return {"export": "TAO's export refuses an existing output (exit 255)",
            "gen_trt_engine": "TAO Deploy would reuse a calibration cache it did not make for this model",
            "prune": "the results of two runs would mix"}.get(subtask, "two runs would mix")
