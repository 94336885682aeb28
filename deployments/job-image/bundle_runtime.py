"""Build taoflow's runtime in the Python image, as one folder the TAO image can take whole.

Run by the Dockerfile's `runtime` stage with the Python image's own interpreter:

    python3.11 bundle_runtime.py BUILD_DIR /opt/taoflow-runtime

BUILD_DIR holds the wheelhouse: every wheel taoflow needs at its pinned version, made on the host
by `scripts/job-image` (pip, setuptools and wheel too); nothing is downloaded. The folder gets

    python/    the interpreter, its libpython and its standard library (no tests, no tkinter)
    venv/      a venv of that interpreter with taoflow's dependencies from the wheelhouse
    libs/      every shared library those binaries load from outside the folder (found by
               asking the image's dynamic loader, as `ldd` does), the loader included, and
               `manifest`: one `NAME PATH` line per library, PATH being where the loader found it
    install.sh what the final stage runs on the TAO image (next to this file)

The final stage links a library at its PATH only where the TAO image has none of that name, so
TAO's own stack is never replaced: on TAO's Ubuntu 20.04 only what it lacks is added, on the
stand-in TAO image of the tests (busybox, no C library at all) everything is, the loader too.
Python's interpreter runs from any folder: it finds its standard library next to itself, and
the official images link libpython by `$ORIGIN/../lib`. Standard-library extension modules
whose libraries the Python image itself lacks (e.g. `_tkinter` without Tk) are left out.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import sysconfig
from pathlib import Path

#: Parts of the standard library a job never imports; tests alone are a third of it.
SKIPPED = {"test", "tests", "idlelib", "tkinter", "turtledemo", "site-packages", "dist-packages", "_bundled"}


def main(build: Path, out: Path) -> None:
    python = out / "python"
    interpreter = copy_interpreter(python)
    venv = out / "venv"
    subprocess.run([str(interpreter), "-m", "venv", "--without-pip", str(venv)], check=True)
    install_dependencies(venv / "bin" / "python", build)
    libraries = needed_libraries(out, interpreter)
    write_libraries(out / "libs", libraries)
    shutil.copy2(Path(__file__).with_name("install.sh"), out / "install.sh")


def copy_interpreter(python: Path) -> Path:
    """The running interpreter, its libpython and its standard library under `python`."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    (python / "bin").mkdir(parents=True)
    (python / "lib").mkdir()
    interpreter = python / "bin" / version
    shutil.copy2(os.path.realpath(sys.executable), interpreter)
    (python / "bin" / "python3").symlink_to(version)
    if sysconfig.get_config_var("Py_ENABLE_SHARED"):
        library = Path(sysconfig.get_config_var("LIBDIR")) / sysconfig.get_config_var("INSTSONAME")
        shutil.copy2(library.resolve(), python / "lib" / library.name)
    stdlib = Path(sysconfig.get_path("stdlib"))
    shutil.copytree(stdlib, python / "lib" / version, symlinks=True, ignore=_not_needed)
    dynload = Path(sysconfig.get_config_var("DESTSHARED") or stdlib / "lib-dynload")
    if stdlib not in dynload.parents:  # a distribution that keeps them elsewhere
        shutil.copytree(dynload, python / "lib" / version / "lib-dynload", symlinks=True, ignore=_not_needed)
    return interpreter


def _not_needed(folder: str, names: list[str]) -> set[str]:
    skipped = {name for name in names
               if name in SKIPPED or name.startswith(("config-", "_tkinter")) or name.endswith(".a")}
    if os.path.basename(folder) == "__pycache__":  # keep the plain bytecode, not the -O copies
        skipped |= {name for name in names if ".opt-" in name}
    return skipped


def install_dependencies(python: Path, build: Path) -> None:
    """Every wheel of the wheelhouse: taoflow's dependencies at their pinned versions, nothing else.

    The final stage installs taoflow itself and `pip check`s that nothing it needs is missing."""
    [pip] = sorted(build.glob("pip-*.whl"))
    # No bytecode for all 130 packages (it took longer than the install): the final stage's import
    # check writes it for what the flow imports.
    command = [str(python), str(pip / "pip"), "install", "--no-index", "--find-links", str(build), "--no-compile",
               "--no-cache-dir", "--disable-pip-version-check", "-q", *map(str, sorted(build.glob("*.whl")))]
    # The build host's pip configuration (indexes, find-links) is not the image's.
    subprocess.run(command, check=True, env=os.environ | {"PIP_CONFIG_FILE": os.devnull})


def needed_libraries(out: Path, interpreter: Path) -> dict[str, set[str]]:
    """NAME -> the paths the loader found it at, for every library loaded from outside `out`."""
    loader = elf_interpreter(interpreter)
    found: dict[str, set[str]] = {loader.rsplit("/", 1)[-1]: {loader}}
    for path in sorted(elf_files(out)):
        listing = subprocess.run([loader, "--list", str(path)], capture_output=True, text=True)
        libraries, missing = parse_listing(listing.stdout)
        stdlib_module = "lib-dynload" in path.parts
        if listing.returncode != 0 and not missing:
            raise SystemExit(f"the dynamic loader cannot read {path}: {listing.stderr.strip()}")
        if missing and stdlib_module:
            print(f"bundle_runtime: leaving out {path.name}: the Python image lacks {', '.join(missing)}")
            path.unlink()
            continue
        if missing:
            raise SystemExit(f"{path} needs {', '.join(missing)}, which the Python image does not have: "
                             "use a Python image with these libraries")
        for name, where in libraries:
            if out not in Path(where).parents:
                found.setdefault(name, set()).add(where)
    return found


def parse_listing(text: str) -> tuple[list[tuple[str, str]], list[str]]:
    """`ld.so --list` output as (name, path) pairs and the names it could not find.

    >>> parse_listing("\\tlinux-vdso.so.1 (0x7)\\n\\tlibz.so.1 => /lib/x/libz.so.1 (0x7)\\n"
    ...               "\\tlibq.so => not found\\n\\t/lib64/ld-linux-x86-64.so.2 (0x7)\\n")
    ([('libz.so.1', '/lib/x/libz.so.1'), ('ld-linux-x86-64.so.2', '/lib64/ld-linux-x86-64.so.2')], ['libq.so'])
    """
    libraries, missing = [], []
    for line in text.splitlines():
        line = line.strip()
        if " => " in line:
            name, where = line.split(" => ", 1)
            if where.startswith("not found"):
                missing.append(name)
            elif where.startswith("/"):
                libraries.append((name, where.rsplit(" (", 1)[0]))
        elif line.startswith("/"):  # the loader itself
            where = line.rsplit(" (", 1)[0]
            libraries.append((where.rsplit("/", 1)[-1], where))
    return libraries, missing


def elf_files(root: Path):
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and (".so" in path.name or path.parent.name == "bin"):
            with path.open("rb") as handle:
                if handle.read(4) == b"\x7fELF":
                    yield path


def elf_interpreter(path: Path) -> str:
    """The program interpreter (PT_INTERP) of a 64-bit little-endian ELF executable."""
    data = path.read_bytes()
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for index in range(phnum):
        kind, _, offset, _, _, size = struct.unpack_from("<IIQQQQ", data, phoff + index * phentsize)
        if kind == 3:  # PT_INTERP
            return data[offset:offset + size].rstrip(b"\0").decode()
    raise SystemExit(f"{path} has no program interpreter: a static or non-glibc Python is not supported")


def write_libraries(libs: Path, found: dict[str, set[str]]) -> None:
    libs.mkdir()
    lines = []
    for name, paths in sorted(found.items()):
        shutil.copy2(os.path.realpath(sorted(paths)[0]), libs / name)
        lines += [f"{name} {where}" for where in sorted(paths)]
    (libs / "manifest").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
