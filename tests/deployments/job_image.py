"""The job image of the tests: the real deployments/Dockerfile, built with nothing pulled.

`docker build` (the legacy builder, `--network none`) runs with two local base images:

- TAO_IMAGE: the stand-in TAO image (tests/standin, busybox, no C library);
- PYTHON_IMAGE: this machine's Python 3.11, imported as an image (`docker import`, like the
  stand-in): the interpreter, its standard library, and every shared library it and the test
  venv's extension modules link to (found with `ldd`), at the paths they have here, plus busybox
  for the build's shell. The wheelhouse is the one `scripts/test` makes (ensure_job_wheelhouse).

The Python image's tag is a hash of what goes in; the job image is whatever `docker build`
answers, so its layer cache (keyed by content) builds it once per change of the code, the pins
or the base images, and every test session gets the image of its own tree.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

from tests.fixtures.services import service_missing

REPO = Path(__file__).resolve().parents[2]
PYTHON_REPOSITORY = "taoflow-host-python"
JOB_REPOSITORY = "taoflow-test-job"
BUSYBOX = Path("/bin/busybox")
CHANGES = ["ENV PATH=/usr/local/bin:/usr/bin:/bin", "ENV HOME=/root", 'CMD ["/bin/sh"]']


def bundle_module():
    """deployments/job-image/bundle_runtime.py (a build script, not a package module)."""
    path = REPO / "deployments" / "job-image" / "bundle_runtime.py"
    spec = importlib.util.spec_from_file_location("bundle_runtime", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def host_python_files() -> dict[str, Path]:
    """Path in the image -> file here: this Python, its standard library and the libraries they load."""
    bundle = bundle_module()
    interpreter = Path(os.path.realpath(sys._base_executable))
    files = {str(interpreter): interpreter}
    elves = [interpreter]
    if sysconfig.get_config_var("Py_ENABLE_SHARED"):
        library = Path(sysconfig.get_config_var("LIBDIR")) / sysconfig.get_config_var("INSTSONAME")
        files[str(library)] = library
    stdlib = Path(sysconfig.get_path("stdlib"))
    dynload = Path(sysconfig.get_config_var("DESTSHARED") or stdlib / "lib-dynload")
    for top in {stdlib, dynload}:
        for folder, names, leaves in os.walk(top):
            names[:] = sorted(set(names) - bundle._not_needed(folder, names))
            for leaf in sorted(set(leaves) - bundle._not_needed(folder, leaves)):
                files[os.path.join(folder, leaf)] = Path(folder, leaf)
    elves += [elf for elf in bundle.elf_files(dynload) if str(elf) in files]
    # The venv's extension modules are the wheels the image installs: their libraries must be here too.
    elves += list(bundle.elf_files(Path(sysconfig.get_path("platlib"))))
    for elf in elves:
        listing = subprocess.run(["ldd", str(elf)], capture_output=True, text=True).stdout
        for _, where in bundle.parse_listing(listing)[0]:
            if not os.path.normpath(where).startswith(sys.prefix + os.sep):  # a wheel's own libraries come with it
                files.setdefault(where, Path(os.path.realpath(where)))
    return files


def _tar(files: dict[str, Path], interpreter: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        made: set[str] = set()

        def add_dirs(path: str) -> None:
            parts = Path(path).parent.parts[1:]
            for depth in range(1, len(parts) + 1):
                folder = "/".join(parts[:depth])
                if folder not in made:
                    made.add(folder)
                    info = tarfile.TarInfo(folder)
                    info.type, info.mode = tarfile.DIRTYPE, 0o1777 if folder == "tmp" else 0o755
                    tar.addfile(info)

        def add_link(path: str, target: str) -> None:
            add_dirs(path)
            info = tarfile.TarInfo(path.lstrip("/"))
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)

        for path in ("/tmp/.keep", "/root/.keep"):
            add_dirs(path)
        for path, source in sorted(files.items()):
            add_dirs(path)
            tar.add(source, arcname=path.lstrip("/"), recursive=False)
        add_dirs("/bin/busybox")
        tar.add(BUSYBOX, arcname="bin/busybox")
        add_link("/bin/sh", "busybox")
        add_link("/usr/local/bin/python3.11", interpreter)
    return buffer.getvalue()


def host_python_image(client) -> str:
    """The tag of this machine's Python as a base image, imported if this version is absent."""
    files = host_python_files()
    digest = hashlib.sha256("\n".join(CHANGES).encode() + BUSYBOX.read_bytes())
    for path, source in sorted(files.items()):
        digest.update(path.encode() + b"\0" + source.read_bytes())
    version = digest.hexdigest()[:16]
    if not client.images.list(name=f"{PYTHON_REPOSITORY}:{version}"):
        interpreter = str(Path(os.path.realpath(sys._base_executable)))
        client.api.import_image_from_data(_tar(files, interpreter), repository=PYTHON_REPOSITORY, tag=version,
                                          changes=CHANGES)
    return client.images.get(f"{PYTHON_REPOSITORY}:{version}").tags[0]


def build_job_image(tao_image: str, python_image: str, log: Path) -> str:
    """`docker build -f deployments/Dockerfile .` on those base images; returns the image's tag."""
    if not any((REPO / "wheelhouse").glob("pip-*.whl")):
        service_missing("no wheelhouse/ for the job image: scripts/test makes it (scripts/lib.sh)")
    command = ["docker", "build", "-q", "--network", "none", "-f", "deployments/Dockerfile",
               "--build-arg", f"TAO_IMAGE={tao_image}", "--build-arg", f"PYTHON_IMAGE={python_image}", "."]
    # The legacy builder: Debian's docker.io has no buildx, and it is what reads only the root .dockerignore.
    with log.open("wb") as output:
        built = subprocess.run(command, cwd=REPO, env=os.environ | {"DOCKER_BUILDKIT": "0"}, stdout=subprocess.PIPE,
                               stderr=output, timeout=1800)
    if built.returncode != 0:
        raise AssertionError(f"the job image did not build:\n{log.read_text()[-4000:]}")
    image_id = built.stdout.decode().split()[-1]
    tag = f"{JOB_REPOSITORY}:{image_id.removeprefix('sha256:')[:16]}"
    subprocess.run(["docker", "tag", image_id, tag], check=True)
    return tag
