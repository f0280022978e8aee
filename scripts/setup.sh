#!/usr/bin/env bash
# Creates .venv and installs the locked dependencies into it (idempotent, fast when nothing changed).
# Usage: scripts/setup.sh [runtime|dev]
# dev also registers the venv as the Jupyter kernel `daca-kit` and keeps JupyterLab off the internet.
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-dev}"
lock="requirements-dev.lock"
[ "$profile" = "runtime" ] && lock="requirements.lock"
PY="${PYTHON:-python3}"
UV_VERSION="0.13.9"
KERNEL="daca-kit"

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

if [ "$profile" = "dev" ]; then
  # The notebooks name this kernel: any Jupyter front end (JupyterLab, VS Code) then runs them in .venv.
  if [ ! -f ".venv/share/jupyter/kernels/$KERNEL/kernel.json" ]; then
    echo "setup: registering the Jupyter kernel '$KERNEL' (.venv/bin/python)" >&2
    .venv/bin/python -m ipykernel install --sys-prefix --name "$KERNEL" --display-name "Python (daca_kit)" >/dev/null
  fi
  # JupyterLab from .venv asks nobody on the internet: no news feed, no update check, no extension
  # listing from PyPI, no news prompt (config in .venv/etc/jupyter, which only this venv's Jupyter reads).
  mkdir -p .venv/etc/jupyter/labconfig
  cat > .venv/etc/jupyter/jupyter_lab_config.json <<'JSON'
{
  "LabApp": {
    "news_url": null,
    "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
    "extension_manager": "readonly"
  }
}
JSON
  cat > .venv/etc/jupyter/labconfig/page_config.json <<'JSON'
{
  "disabledExtensions": {
    "@jupyterlab/apputils-extension:announcements": true
  }
}
JSON
fi
