# Shared by scripts/demo and scripts/test: idempotent set-up steps for a fresh machine.
# Sourced, not run. Everything lands inside the checkout (.venv, .cache) except Debian packages.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TAOFLOW_VENV:-$ROOT/.venv}"
TOOLS="$ROOT/.cache/tools"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3

log() { printf '\033[1m[taoflow]\033[0m %s\n' "$*" >&2; }

ensure_venv() {
  # $1: pip extras, e.g. "test"
  local extras="${1:-}"
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtualenv $VENV"
    "$PY" -m venv "$VENV"
  fi
  local stamp="$VENV/.taoflow-installed${extras:+-$extras}"
  if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ] || [ "$ROOT/constraints.txt" -nt "$stamp" ]; then
    log "installing taoflow${extras:+[$extras]} and its dependencies (a few minutes on a fresh machine)"
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
    "$VENV/bin/python" -m pip install -q -c "$ROOT/constraints.txt" -e "$ROOT${extras:+[$extras]}"
    touch "$stamp"
  fi
  export PATH="$VENV/bin:$PATH"
}

apt_install() {
  # Debian packages, only when missing; needs root (the CI machine is root).
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_azurite() {
  if [ ! -x "$TOOLS/node_modules/.bin/azurite-blob" ]; then
    command -v npm >/dev/null 2>&1 || apt_install nodejs npm
    log "installing Azurite from npm into $TOOLS"
    mkdir -p "$TOOLS"
    (cd "$TOOLS" && npm install --no-audit --no-fund --silent azurite@3 >/dev/null)
  fi
  export TAOFLOW_AZURITE_BIN="$TOOLS/node_modules/.bin/azurite-blob"
}

ensure_browser() {
  # The artifact pictures are checked in a real browser (tests/report/test_browser.py): Debian's
  # chromium, driven by Playwright's Python package (a test dependency, pinned in constraints.txt)
  # with executable_path=/usr/bin/chromium. Never `playwright install`: no browser is downloaded.
  apt_install chromium
}

STARTED_DOCKERD_PID=""
ensure_docker() {
  command -v dockerd >/dev/null 2>&1 || apt_install docker.io
  # The stand-in TAO image is built from /bin/busybox: it must be the static build.
  apt_install busybox-static
  if docker info >/dev/null 2>&1; then return 0; fi
  log "starting dockerd (vfs storage, no bridge: the test containers need no network)"
  mkdir -p "$ROOT/.cache"
  dockerd --storage-driver=vfs --iptables=false --bridge=none >"$ROOT/.cache/dockerd.log" 2>&1 &
  STARTED_DOCKERD_PID=$!
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  log "dockerd did not come up; its log:"; tail -n 30 "$ROOT/.cache/dockerd.log" >&2
  return 1
}

stop_started_dockerd() {
  if [ -n "$STARTED_DOCKERD_PID" ]; then
    kill "$STARTED_DOCKERD_PID" 2>/dev/null || true
    wait "$STARTED_DOCKERD_PID" 2>/dev/null || true
  fi
}

# The job image's wheelhouse (deployments/Dockerfile installs from it, without network): the pinned
# versions of taoflow's dependencies as manylinux wheels that run on glibc <= 2.$JOB_IMAGE_GLIBC (TAO 5's
# Ubuntu 20.04 has 2.31; the build host's Python is newer or the same). `pip download` takes the
# indexes of pip's configuration or PIP_INDEX_URL: a mirror works. Made again when the pins change.
JOB_IMAGE_GLIBC="${JOB_IMAGE_GLIBC:-31}"
ensure_job_wheelhouse() {
  local dest="$ROOT/wheelhouse" stamp="$ROOT/wheelhouse/.made-for-glibc-2.$JOB_IMAGE_GLIBC"
  if [ -f "$stamp" ] && [ "$stamp" -nt "$ROOT/pyproject.toml" ] && [ "$stamp" -nt "$ROOT/constraints.txt" ]; then
    return 0
  fi
  log "downloading the job image's wheels into $dest (glibc <= 2.$JOB_IMAGE_GLIBC)"
  local platforms=() minor
  for minor in $(seq 17 "$JOB_IMAGE_GLIBC"); do platforms+=(--platform "manylinux_2_${minor}_x86_64"); done
  rm -rf "$dest"
  "$VENV/bin/python" -m pip download -q -d "$dest" --only-binary=:all: --python-version 3.11 \
    --implementation cp --abi cp311 "${platforms[@]}" --platform manylinux2014_x86_64 \
    -c "$ROOT/constraints.txt" "$ROOT" pip setuptools wheel
  touch "$stamp"
}

# NVIDIA's own DetectNet_v2 message definitions, for the tests that hold our spec engine against
# TAO's parser (tests/spec/tao_protos.py). Only the generated *_pb2.py modules are taken from the
# nvidia-tao-deploy wheel (they need nothing but `protobuf`); the pure-Python protobuf 3.20.3 that
# TAO's TF1 containers may ship is kept beside them as a second reference. Without network access
# this only warns: the tests that need the modules then fail under TAOFLOW_REQUIRE_SERVICES=1.
TAO_DEPLOY_VERSION="7.3.0"
TAO_OLD_PROTOBUF_VERSION="3.20.3"
ensure_tao_protos() {
  local dest="$ROOT/.cache/tao-protos" py="$VENV/bin/python"
  local stamp="$dest/.ready-$TAO_DEPLOY_VERSION-$TAO_OLD_PROTOBUF_VERSION"
  export TAOFLOW_TAO_PROTOS="$dest/nvidia-tao-deploy-$TAO_DEPLOY_VERSION"
  export TAOFLOW_PROTOBUF_320="$dest/protobuf-$TAO_OLD_PROTOBUF_VERSION"
  [ -f "$stamp" ] && return 0
  log "fetching NVIDIA's DetectNet_v2 protos (nvidia-tao-deploy==$TAO_DEPLOY_VERSION) and protobuf $TAO_OLD_PROTOBUF_VERSION"
  rm -rf "$dest" && mkdir -p "$dest/wheels"
  if ! "$py" -m pip download -q --no-deps -d "$dest/wheels" "nvidia-tao-deploy==$TAO_DEPLOY_VERSION" \
      "protobuf==$TAO_OLD_PROTOBUF_VERSION" --only-binary=:all: --python-version 3.11 >/dev/null 2>&1; then
    log "WARNING: cannot download the TAO protos; the tests that compare with NVIDIA's parser will fail"
    return 0
  fi
  "$py" - "$dest" "$TAOFLOW_TAO_PROTOS" "$TAOFLOW_PROTOBUF_320" <<'PY' || { log "WARNING: extracting the TAO protos failed"; return 0; }
import glob, os, re, sys, zipfile
dest, protos, old = sys.argv[1:4]
(tao,) = glob.glob(os.path.join(dest, "wheels", "nvidia_tao_deploy-*.whl"))
(pb,) = glob.glob(os.path.join(dest, "wheels", "protobuf-*.whl"))
wanted = re.compile(r"nvidia_tao_deploy/cv/(detectnet_v2|common)/proto/[a-z0-9_]+_pb2\.py")
with zipfile.ZipFile(tao) as z:
    names = [n for n in z.namelist() if wanted.fullmatch(n)]
    for n in names:
        z.extract(n, protos)
# Empty package markers: the wheel's own __init__ files are not needed to import the protos.
for pkg in ("nvidia_tao_deploy", "nvidia_tao_deploy/cv", "nvidia_tao_deploy/cv/detectnet_v2",
            "nvidia_tao_deploy/cv/detectnet_v2/proto", "nvidia_tao_deploy/cv/common", "nvidia_tao_deploy/cv/common/proto"):
    open(os.path.join(protos, pkg, "__init__.py"), "w").close()
with zipfile.ZipFile(pb) as z:
    z.extractall(old, [n for n in z.namelist() if n.startswith("google/")])
print(len(names), "proto modules")
PY
  touch "$stamp"
}
