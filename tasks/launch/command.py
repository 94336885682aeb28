"""The `detectnet_v2` command lines, built as argv lists (never joined into a shell string).

Paths are in-container paths from `tasks.launch.slots`. The key travels in the argv (only when TAO
needs it, `tasks.launch.encryption`) but never in its display form, and `--log_file` is not passed on: TAO would send the console into the
file, so the launcher writes the streamed log there itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal, Sequence

from tasks.errors import ConfigError
from tasks.launch.slots import Slot, container_path, container_spec_file
from tasks.redact import MASK, Redactor

SubTask = Literal["train", "dataset_convert", "evaluate", "prune", "export", "gen_trt_engine"]


@dataclass(frozen=True)
class Command:
    """One `detectnet_v2` invocation: the argv, what it writes, and what must stay hidden."""

    subtask: SubTask
    argv: tuple[str, ...] = field(repr=False)
    #: -r inside the container (None for a dataset_convert without -r).
    results_dir: str | None
    #: weights/<model_name>.hdf5 is the proof of a finished training.
    model_name: str = "model"
    #: The spec's training_config.num_epochs: a complete run has model.epoch-<num_epochs>.ckzip.
    num_epochs: int | None = None
    #: Where the launcher copies the streamed log (an in-container path), or None.
    log_file: str | None = None
    #: The -o prefix of dataset_convert.
    output_prefix: str | None = None
    #: The model evaluate scores (-m), an in-container path.
    model: str | None = None
    secrets: tuple[str, ...] = field(default=(), repr=False)
    #: Why the key is passed as -k (None: it is not passed).
    key_reason: str | None = None
    #: GPUs the job uses (train: --gpus; evaluate: one; dataset_convert: none).
    num_gpus: int = 0

    def with_gpu_index(self, ids: Sequence[int]) -> "Command":
        """The same command on exactly GPUs `ids`, as TAO's wrapper numbers them (`nvidia-smi -L`).

        TAO's wrapper sets CUDA_VISIBLE_DEVICES from `--gpu_index` (0..N-1 without it), replacing
        whatever the environment said (`cv/common/entrypoint/entrypoint.py: check_valid_gpus`).

        >>> train_command(num_gpus=2).with_gpu_index([2, 3]).display_argv()[-4:]
        ['2', '--gpu_index', '2', '3']
        """
        argv, skipping = [], False
        for arg in self.argv:
            if arg == "--gpu_index":
                skipping = True
                continue
            if skipping and arg.isdigit():
                continue
            skipping = False
            argv.append(arg)
        return replace(self, argv=(*argv, "--gpu_index", *map(str, ids)))

    def display_argv(self) -> list[str]:
        """The argv with every secret masked: safe to print, log and store (a short key too)."""
        redact = Redactor(self.secrets)
        return [MASK if arg in self.secrets else redact(arg) for arg in self.argv]

    def __repr__(self) -> str:
        return f"Command({' '.join(self.display_argv())!r})"


def train_command(
    *,
    model_name: str = "model",
    num_epochs: int | None = None,
    key: str | None = None,
    key_reason: str | None = None,
    num_gpus: int = 1,
    gpu_index: Sequence[int] = (),
    use_amp: bool = False,
    log_file: str | None = None,
    spec: str | None = None,
    results_dir: str | None = None,
) -> Command:
    """`detectnet_v2 train -e SPEC -r RESULTS -n NAME [-k KEY] --gpus N [--gpu_index i ...] [--use_amp]`.

    `gpu_index` are the GPU numbers *as TAO sees them* (see `container_gpu_index`).

    >>> train_command(num_epochs=3, num_gpus=2, gpu_index=[0, 1]).display_argv()[-5:]
    ['--gpus', '2', '--gpu_index', '0', '1']
    """
    if gpu_index and len(gpu_index) != num_gpus:
        raise ConfigError(
            f"gpu_index lists {len(gpu_index)} GPU(s) but num_gpus is {num_gpus}",
            fix="give as many GPU indices as num_gpus, or none",
        )
    results = results_dir or container_path(Slot.RESULTS)
    argv = ["detectnet_v2", "train", "-e", spec or container_spec_file(), "-r", results, "-n", model_name]
    if key:
        argv += ["-k", key]
    argv += ["--gpus", str(num_gpus)]
    if gpu_index:
        argv += ["--gpu_index", *[str(i) for i in gpu_index]]
    if use_amp:
        argv.append("--use_amp")
    return Command(
        subtask="train",
        argv=tuple(argv),
        results_dir=results,
        model_name=model_name,
        num_epochs=num_epochs,
        log_file=_in_results(log_file, results),
        secrets=(key,) if key else (),
        key_reason=key_reason if key else None,
        num_gpus=num_gpus,
    )


def container_gpu_index(host_gpu_index: Sequence[int]) -> tuple[int, ...]:
    """The `--gpu_index` for a container given the host GPUs `host_gpu_index`.

    Docker's device request for host GPUs 2 and 3 makes them GPUs 0 and 1 inside the container,
    and TAO's wrapper refuses an index it cannot see (`tao-source-facts.md` §3).

    >>> container_gpu_index([2, 3])
    (0, 1)
    """
    return tuple(range(len(host_gpu_index)))


def convert_command(*, spec: str, output_prefix: str, results_dir: str | None = None) -> Command:
    """`detectnet_v2 dataset_convert -d SPEC -o PREFIX [-r DIR]`.

    >>> convert_command(spec="/s/convert.txt", output_prefix="/r/tfrecords/kitti").display_argv()
    ['detectnet_v2', 'dataset_convert', '-d', '/s/convert.txt', '-o', '/r/tfrecords/kitti']
    """
    argv = ["detectnet_v2", "dataset_convert", "-d", spec, "-o", output_prefix]
    if results_dir:
        argv += ["-r", results_dir]
    return Command(subtask="dataset_convert", argv=tuple(argv), results_dir=results_dir, output_prefix=output_prefix)


def evaluate_command(
    *,
    spec: str,
    model: str,
    results_dir: str,
    key: str | None = None,
    key_reason: str | None = None,
    gpu_index: int | None = None,
) -> Command:
    """`detectnet_v2 evaluate -e SPEC -m MODEL -r RESULTS [-k KEY] [--gpu_index i]`.

    One GPU (TAO's wrapper allows more only for train). `results_dir` must be a folder of its own:
    evaluate opens `<-r>/status.json` with "w" (`tao-source-facts.md` §9), so pointed at train's
    results folder it would wipe train's status.

    >>> evaluate_command(spec="/s.txt", model="/m/model.hdf5", results_dir="/eval").display_argv()
    ['detectnet_v2', 'evaluate', '-e', '/s.txt', '-m', '/m/model.hdf5', '-r', '/eval']
    """
    argv = ["detectnet_v2", "evaluate", "-e", spec, "-m", model, "-r", results_dir]
    if key:
        argv += ["-k", key]
    if gpu_index is not None:
        argv += ["--gpu_index", str(gpu_index)]
    return Command(subtask="evaluate", argv=tuple(argv), results_dir=results_dir, model=model,
                   secrets=(key,) if key else (), key_reason=key_reason if key else None, num_gpus=1)


def _in_results(log_file: str | None, results: str) -> str | None:
    # The component's log_file is a name inside the results, as the seed component used it.
    if not log_file:
        return None
    return log_file if log_file.startswith("/") else f"{results.rstrip('/')}/{log_file}"
