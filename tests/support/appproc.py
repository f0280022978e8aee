"""The real app as a subprocess on loopback, for restart, fault and security tests.

    with AppProcess(tmp_path, env={"DATABASE_URL": pg_url}) as app:   # REST API only (starts fast)
    with AppProcess(tmp_path, ui=True) as app:                          # `python app.py`: UI + REST API
        r = httpx.post(app.url("/chat/"), json={"user_id": "alice", "text": "hi"})
        app.kill()          # SIGKILL: no shutdown hooks run, as in a crash
        app.start()         # same port, same settings, same log file (appended)
        assert "secret" not in app.output()

The caller's `env` is all the app sees of the settings: optional services it does not name are set empty
(off), every other setting is removed from the child's environment (the app's default applies), so the
developer's environment cannot leak in; the process runs in `workdir`, where there is no `.env` and
where SQLite's file goes. Everything the app prints goes to `workdir/app.log`.

`ui=True` runs `python app.py` exactly as Spaces does. The default runs `python -m daca_kit.cli serve
--api-only`: the same `daca_kit.web.server.serve` (same kit, REST API, logging and uvicorn) without
mounting Gradio, whose import alone takes several seconds of CPU; fault tests start the app often.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from daca_kit.settings import SERVICE_SETTINGS, setting_names

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"

REVIEWER_PASSWORD = "rv-pass-7f3c19a2e8"
ADMIN_TOKEN = "adm-token-5b0d4e61c2"

# Optional services: set to "" (off) unless the caller names them.
_OPTIONAL = SERVICE_SETTINGS
# Everything else that changes what the app does: removed from the child's environment (so the
# app's default applies) unless the caller sets it.
_CONTROLLED = setting_names()


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AppProcess:
    """`python app.py` on 127.0.0.1:<free port>; `kill()` is a hard kill, `start()` starts it again."""

    def __init__(
        self,
        workdir: Path,
        *,
        env: dict[str, str | None] | None = None,  # None as a value: leave that setting at its default
        ui: bool = False,
        startup_timeout: float = 60.0,
    ) -> None:
        self.ui = ui
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "app.log"
        self.port = free_port()
        self.startup_timeout = startup_timeout
        self.settings: dict[str, str] = {name: "" for name in _OPTIONAL}
        self.settings.update(
            {
                "DATABASE_URL": f"sqlite:///{self.workdir / 'daca.db'}",
                "DACA_REVIEWER_PASSWORD": REVIEWER_PASSWORD,
                "DACA_ADMIN_TOKEN": ADMIN_TOKEN,
                "DACA_RATE_LIMIT": "100000/minute",
            }
        )
        for key, value in (env or {}).items():
            if value is None:
                self.settings.pop(key, None)  # the app's default
            else:
                self.settings[key] = value
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    # -- addresses -----------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def client(self, **kwargs: Any) -> httpx.Client:
        """An httpx client on the app (no proxies from the environment)."""
        return httpx.Client(
            base_url=self.base_url, trust_env=False, timeout=kwargs.pop("timeout", 30.0), **kwargs
        )

    @property
    def reviewer_auth(self) -> tuple[str, str]:
        return ("reviewer", self.settings["DACA_REVIEWER_PASSWORD"])

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings['DACA_ADMIN_TOKEN']}"}

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> AppProcess:
        """Starts the app (again) and waits until GET /health answers 200."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("the app is already running")
        child_env = {k: v for k, v in os.environ.items() if k not in _CONTROLLED}
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
            child_env.pop(name, None)
        child_env.update(self.settings)
        child_env.update({"PORT": str(self.port), "HOST": "127.0.0.1", "PYTHONUNBUFFERED": "1"})
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in kill()/stop()
        command = (
            [sys.executable, str(APP)]
            if self.ui
            else [sys.executable, "-m", "daca_kit.cli", "serve", "--api-only"]
        )
        self.proc = subprocess.Popen(
            command,
            cwd=self.workdir,
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        with httpx.Client(trust_env=False, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc is None or self.proc.poll() is not None:
                    code = self.proc.returncode if self.proc else None
                    raise RuntimeError(
                        f"the app exited with code {code} while starting:\n{self.output()[-3000:]}"
                    )
                try:
                    if client.get(self.url("/health")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(
            f"the app did not answer /health within {self.startup_timeout} s:\n{self.output()[-3000:]}"
        )

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to flush, close or finish anything."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._close_log()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (a graceful stop), then SIGKILL if it does not end in time."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close_log()

    def restart(self) -> AppProcess:
        self.kill()
        return self.start()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def output(self) -> str:
        """Everything the app printed so far (all its runs), for assertions and secret scans."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def rss_kib(self) -> int | None:
        """Resident memory of the app process (VmRSS from /proc), or None when not running."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            return None
        return None

    def __enter__(self) -> AppProcess:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.kill()
