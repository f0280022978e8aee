#!/usr/bin/env bash
# Runs the app (Gradio UI + REST API on one port) on embedded defaults unless settings say otherwise.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh runtime
exec .venv/bin/python app.py "$@"
