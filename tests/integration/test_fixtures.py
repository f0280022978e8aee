"""The service fixtures never make a test vanish in CI: a RabbitMQ vhost or user that rabbitmqctl cannot
make is a failure under DACA_REQUIRE_SERVICES=1 (as `.ci/run` sets) and a skip with the reason otherwise;
no fixture falls back to the shared `/` vhost.

Each case runs a small pytest session in a subprocess, on the suite's own fixtures (`-p tests.conftest`),
with a `rabbitmqctl` first on PATH that fails one command and hands every other one to the real tool.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import AMQP_HOST, AMQP_PORT, ROOT, need, unavailable

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # four pytest sessions

PROBE = """
def test_vhost(amqp_url):
    assert amqp_url.rsplit("/", 1)[1] not in ("", "%2F")  # never the shared vhost


def test_user(amqp_user):
    assert "@" in amqp_user
"""


def session(tmp_path: Path, failing: str, *, require: bool) -> dict[str, str]:
    """Runs the probe tests with rabbitmqctl's `failing` command broken; returns {test: outcome line}."""
    real = shutil.which("rabbitmqctl")
    if real is None:
        unavailable("rabbitmqctl is not on PATH")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "rabbitmqctl"
    fake.write_text(
        "#!/bin/sh\n"
        f'for a in "$@"; do [ "$a" = {failing} ] && {{ echo "Error: {failing} is broken here" >&2; exit 70; }}; done\n'
        f'exec {real} "$@"\n'
    )
    fake.chmod(0o755)
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if k not in ("DACA_REQUIRE_SERVICES", "PYTEST_ADDOPTS")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    if require:
        env["DACA_REQUIRE_SERVICES"] = "1"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider", "-c",
         str(ROOT / "pyproject.toml"), "--rootdir", str(tmp_path), "-q", "-rA", str(probe)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    outcomes: dict[str, str] = {}
    for line in done.stdout.splitlines():
        for name in ("test_vhost", "test_user"):
            if f"::{name}" in line and line.split(" ", 1)[0] in ("PASSED", "FAILED", "ERROR", "SKIPPED"):
                outcomes[name] = line
        if line.startswith("SKIPPED") and "test_probe.py" in line:
            # -rA prints skips by location, not by name: "SKIPPED [1] test_probe.py:2: reason"
            outcomes.setdefault("skipped", "")
            outcomes["skipped"] += line + "\n"
    outcomes["output"] = done.stdout[-3000:]
    return outcomes


@pytest.fixture(autouse=True)
def _rabbitmq() -> None:
    need("RabbitMQ", AMQP_HOST, AMQP_PORT)


def test_a_vhost_rabbitmqctl_cannot_add_fails_in_ci_and_never_falls_back_to_slash(tmp_path: Path) -> None:
    ci = session(tmp_path, "add_vhost", require=True)
    assert ci.get("test_vhost", "").startswith("ERROR"), ci["output"]
    assert ci.get("test_user", "").startswith("ERROR"), ci["output"]
    assert "could not add the test vhost" in ci["output"] and "add_vhost is broken here" in ci["output"]
    assert "skipped" not in ci, ci["output"]

    local = session(tmp_path, "add_vhost", require=False)
    assert "test_vhost" not in local and "test_user" not in local, local["output"]  # neither ran
    assert local.get("skipped", "").count("could not add the test vhost") == 2, local["output"]


def test_a_user_rabbitmqctl_cannot_add_fails_in_ci(tmp_path: Path) -> None:
    ci = session(tmp_path, "add_user", require=True)
    assert ci.get("test_vhost", "").startswith("PASSED"), ci["output"]
    assert ci.get("test_user", "").startswith("ERROR"), ci["output"]
    assert "could not add a user" in ci["output"] and "add_user is broken here" in ci["output"]

    local = session(tmp_path, "add_user", require=False)
    assert local.get("test_vhost", "").startswith("PASSED"), local["output"]
    assert "could not add a user" in local.get("skipped", ""), local["output"]
