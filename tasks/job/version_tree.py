"""The folder a run publishes as its version: one tree, assembled from the steps' results folders.

A step's results folder may serve several runs (a completed step is reused by any run with the same
inputs, `tasks.job.step_cache`), so a run never writes its card or report into it. Instead it
assembles `RUN_DIR/version/`: the training results at the top (as a version always had them), each
later step's results under `chain/<step>/`, then its own run marker, card and report, and publishes
that. Files come in as hard links (a copy across file systems), regular files only: a link or a
special file the container left is not taken, and a file the run writes later replaces its entry
(`write_atomic`), never the shared inode.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path
from typing import Mapping

from tasks.files import write_atomic
from tasks.launch.results import RUN_MARKER

#: Where a version keeps each later step's results (prune, retrain, export, engine).
CHAIN_FOLDER = "chain"
#: Files the run writes itself: never taken from a step's folder.
OWN_FILES = frozenset({RUN_MARKER})


def assemble_version(run_dir: Path, train_results: Path, chain: Mapping[str, Path], run_id: str,
                     *, own: frozenset[str] = frozenset()) -> Path:
    """`run_dir/version`, built afresh: `train_results` at the top, `chain[step]` under chain/<step>/,
    this run's marker; names in `own` (the card, the report) are left for the run to write.

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp()); (root / "train" / "weights").mkdir(parents=True)
    >>> _ = (root / "train" / "weights" / "m.hdf5").write_text("w"); (root / "prune").mkdir()
    >>> _ = (root / "prune" / "m_pruned.hdf5").write_text("p")
    >>> tree = assemble_version(root, root / "train", {"prune": root / "prune"}, "run-1")
    >>> sorted(str(p.relative_to(tree)) for p in tree.rglob("*") if p.is_file())
    ['.taoflow-run-id', 'chain/prune/m_pruned.hdf5', 'weights/m.hdf5']
    """
    tree = run_dir / "version"
    shutil.rmtree(tree, ignore_errors=True)
    tree.mkdir(parents=True)
    skip = OWN_FILES | own
    _take(train_results, tree, skip | {CHAIN_FOLDER})
    for step, results in chain.items():
        _take(results, tree / CHAIN_FOLDER / step, OWN_FILES)
    write_atomic(tree / RUN_MARKER, run_id + "\n")
    return tree


def _take(source: Path, target: Path, skip: frozenset[str]) -> None:
    """Every regular file below `source` into `target` (same names), without following a link."""
    target.mkdir(parents=True, exist_ok=True)
    with os.scandir(source) as entries:
        found = sorted(entries, key=lambda e: e.name)
    for entry in found:
        if entry.name in skip:
            continue
        mode = entry.stat(follow_symlinks=False).st_mode
        if stat.S_ISDIR(mode):
            _take(Path(entry.path), target / entry.name, frozenset())
        elif stat.S_ISREG(mode):
            _link_or_copy(Path(entry.path), target / entry.name)


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
            raise
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as src, open(target, "xb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
