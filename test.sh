#!/usr/bin/env bash
# Runs the whole test suite: unit, integration (real local services), notebooks, browser.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh dev
# Two pytest processes (xdist), one test file each at a time: each has its own Redis database and RabbitMQ
# vhost (tests/conftest.py). DACA_TEST_PROCESSES=0 runs everything in this one process.
exec .venv/bin/python -m pytest -n "${DACA_TEST_PROCESSES:-2}" --dist loadfile "$@"
