"""The real app as a subprocess on loopback, for restart, fault and security tests: the package's launcher
(`daca_kit.ops.launcher.LocalApp`, whose docstring gives the isolation rules) with the tests' defaults.

    with AppProcess(tmp_path, env={"DATABASE_URL": pg_url}) as app:   # REST API only (starts fast)
    with AppProcess(tmp_path, ui=True) as app:                          # `python app.py`: UI + REST API
        r = httpx.post(app.url("/chat/"), json={"user_id": "alice", "text": "hi"})
        app.kill()          # SIGKILL: no shutdown hooks run, as in a crash
        app.start()         # same port, same settings, same log file (appended)
        assert "secret" not in app.output()

The caller's `env` is all the app sees of the settings (a value of None leaves that setting at the app's
default); the rate limit is raised so that load tests are not refused, unless `env` names it. Leaving the
block kills the app.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from daca_kit.ops.launcher import LocalApp

NO_RATE_LIMIT = "100000/minute"


def eventually(check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Calls `check` until it returns something truthy and returns that; fails after `timeout` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s (last value: {last!r})")


class AppProcess(LocalApp):
    """`LocalApp` in `workdir` with no rate limit to speak of; leaving the `with` block is a kill."""

    def __init__(
        self,
        workdir: Path,
        *,
        env: dict[str, str | None] | None = None,
        ui: bool = False,
        startup_timeout: float = 60.0,
    ) -> None:
        settings = {"DACA_RATE_LIMIT": NO_RATE_LIMIT, **(env or {})}
        super().__init__(settings, workdir=workdir, ui=ui, startup_timeout=startup_timeout)

    def __exit__(self, *_exc: object) -> None:
        self.kill()
