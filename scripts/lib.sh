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
