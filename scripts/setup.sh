#!/usr/bin/env bash
# Creates .venv and installs the locked dependencies into it (idempotent, fast when nothing changed).
# Usage: scripts/setup.sh [runtime|dev]
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-dev}"
lock="requirements-dev.lock"
[ "$profile" = "runtime" ] && lock="requirements.lock"
PY="${PYTHON:-python3}"
UV_VERSION="0.13.9"

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $("$PY" --version)" >&2
  "$PY" -m venv .venv
fi
if [ ! -x .venv/bin/uv ]; then
  echo "setup: installing uv $UV_VERSION into .venv" >&2
  .venv/bin/python -m pip install --quiet "uv==$UV_VERSION"
fi
stamp=".venv/.installed-$profile"
want="$(cat "$lock" pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing locked dependencies from $lock" >&2
  VIRTUAL_ENV="$PWD/.venv" .venv/bin/uv pip install --quiet --require-hashes -r "$lock"
  VIRTUAL_ENV="$PWD/.venv" .venv/bin/uv pip install --quiet --no-deps -e .
  echo "$want" > "$stamp"
fi
