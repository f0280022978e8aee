#!/usr/bin/env bash
# Runs the whole test suite: unit, integration (real local services), notebooks, browser.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh dev
exec .venv/bin/python -m pytest "$@"
