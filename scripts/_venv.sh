# Shared by scripts/serve and scripts/test: one virtualenv, installed from the lock files in
# requirements/ (exact versions, the same for a newcomer, CI and the image), reinstalled when they change.
ensure_venv() {
  local extras="${1:-}"
  local python="${PYTHON:-python3}"
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || {
    echo "Python 3.11 or newer is needed (found: $("$python" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
    exit 1
  }
  [ -x .venv/bin/python ] || "$python" -m venv .venv
  local lock="requirements/${extras:-base}.txt"
  local stamp=".venv/.installed-${extras:-base}"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ "$lock" -nt "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -r "$lock"
    .venv/bin/python -m pip install --quiet --no-deps -e .
    touch "$stamp"
  fi
}
