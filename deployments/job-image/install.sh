#!/bin/sh
# The job image's last step, run on the TAO image (POSIX sh: TAO's dash, the stand-in's busybox).
# /opt/taoflow-runtime comes from the runtime stage (bundle_runtime.py), /opt/taoflow is the code.
set -eu
runtime=/opt/taoflow-runtime
python=$runtime/venv/bin/python

# 1. Shared libraries: a library is linked where the Python image had it only if the TAO image
#    has none of that name. TAO's own libraries (its C library, OpenSSL, CUDA, ...) stay as they
#    are; TensorFlow 1.15 must not see a different one.
while read -r name target; do
  have=""
  for dir in "${target%/*}" /lib/*-linux-gnu /usr/lib/*-linux-gnu /lib64 /usr/lib64 /lib /usr/lib /usr/local/lib; do
    if [ -e "$dir/$name" ]; then have=1; break; fi
  done
  if [ -z "$have" ]; then
    mkdir -p "${target%/*}"
    ln -s "$runtime/libs/$name" "$target"
  fi
done < "$runtime/libs/manifest"

# 2. The Python must run here. It does not when its C library is newer than the TAO image's
#    (the loader says "GLIBC_2.xx not found").
if ! "$python" -c "import ctypes, ssl, sqlite3, lzma, bz2, zlib, uuid"; then
  echo "taoflow: the Python of PYTHON_IMAGE does not run on TAO_IMAGE (above): use a Python image whose" >&2
  echo "glibc is not newer than the TAO image's (TAO 5 TF1 is Ubuntu 20.04, glibc 2.31: python:3.11-slim-bullseye)." >&2
  exit 1
fi

# 3. taoflow's own code, in place (TAOFLOW_PROJECT_DIR), its dependencies checked, the flow importable
#    (importing it writes the bytecode of what a run imports).
"$python" -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir --disable-pip-version-check \
  -e /opt/taoflow
"$python" -m pip check --disable-pip-version-check
check_home=$(mktemp -d)
(cd /opt/taoflow && PREFECT_HOME="$check_home" "$python" -c "import flows.deployment, prefect.cli, prefect.flow_engine")
rm -rf "$check_home" /root/.cache

# 4. Only `prefect` and `taoflow` go on PATH: `python3` and `detectnet_v2` stay TAO's.
ln -sf "$runtime/venv/bin/prefect" /usr/local/bin/prefect
ln -sf "$runtime/venv/bin/taoflow" /usr/local/bin/taoflow
mkdir -p /var/lib/taoflow
