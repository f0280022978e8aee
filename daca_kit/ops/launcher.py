"""The app in a background process on this machine, for notebooks and tests.

    with LocalApp({"DATABASE_URL": pg_url}) as app:      # starts `daca-kit serve` on a free port
        httpx.get(app.base_url + "/health")
    # stopped on leaving the block, or when the Python process that started it exits

Settings not given are set explicitly (empty for optional services, a fresh SQLite file for the
database, a generated reviewer password and admin token), so the caller's environment and `.env` files
cannot change what runs. The app listens on 127.0.0.1 only and writes its output to `log_path`.
"""

from __future__ import annotations

import atexit
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from daca_kit.errors import DacaError
from daca_kit.ops.client import KitClient
from daca_kit.settings import SERVICE_SETTINGS, setting_names

# Optional services: off ("") unless the caller names them.
OPTIONAL = SERVICE_SETTINGS
# Left out of the child's environment unless given, so the app's own default applies.
CONTROLLED = setting_names()
_PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


class AppStartError(DacaError):
    """The app process exited or did not answer /health in time; the message ends with its log's tail."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class LocalApp:
    """`daca-kit serve` as a child process on 127.0.0.1:<free port>.

    `settings` are environment variables (DESIGN.md's names); a value of "" turns an optional service
    off. `reviewer_password` and `admin_token` are generated unless given in `settings`.
    """

    def __init__(
        self,
        settings: Mapping[str, str | None] | None = None,
        *,
        workdir: str | os.PathLike[str] | None = None,
        port: int | None = None,
        with_ui: bool = False,
        startup_timeout: float = 60.0,
        progress: bool = False,
    ) -> None:
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="daca-app-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "app.log"
        self.port = port or free_port()
        self.with_ui = with_ui
        self.startup_timeout = startup_timeout
        self.progress = progress
        given = {k: v for k, v in (settings or {}).items() if v is not None}
        self.env: dict[str, str] = {name: "" for name in OPTIONAL}
        self.env["DATABASE_URL"] = f"sqlite:///{self.workdir / 'daca.db'}"
        self.env["DACA_REVIEWER_PASSWORD"] = secrets.token_urlsafe(16)
        self.env["DACA_ADMIN_TOKEN"] = secrets.token_urlsafe(24)
        self.env.update({k: str(v) for k, v in given.items() if not (k == "DATABASE_URL" and v == "")})
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    def __repr__(self) -> str:
        return f"LocalApp({self.base_url}, running={self.running})"  # never the settings: they hold secrets

    # -- what callers need -------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def reviewer_password(self) -> str:
        return self.env["DACA_REVIEWER_PASSWORD"]

    @property
    def admin_token(self) -> str:
        return self.env["DACA_ADMIN_TOKEN"]

    @property
    def database_url(self) -> str:
        return self.env["DATABASE_URL"]

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """The end of the app's output, with the reviewer password and admin token removed."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        for name, value in self.env.items():
            if (
                value
                and len(value) >= 4
                and (name in ("DACA_REVIEWER_PASSWORD", "DACA_ADMIN_TOKEN") or "KEY" in name)
            ):
                text = text.replace(value, "***")
        return "\n".join(text.splitlines()[-lines:])

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> LocalApp:
        """Starts the process and waits until GET /health answers; raises AppStartError otherwise."""
        if self.running:
            return self
        child_env = {k: v for k, v in os.environ.items() if k not in CONTROLLED and k not in _PROXIES}
        child_env.update(self.env)
        child_env["PYTHONUNBUFFERED"] = "1"
        command = [
            sys.executable,
            "-m",
            "daca_kit.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        if not self.with_ui:
            command.append("--api-only")
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            command,
            cwd=self.workdir,
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        atexit.register(self.stop)
        try:
            self.wait_healthy(self.startup_timeout)
        except AppStartError:
            self.stop()
            raise
        return self

    def wait_healthy(self, timeout: float) -> dict[str, Any]:
        """Waits until GET /health answers 200 and returns its body (with a progress bar when asked)."""
        start = time.monotonic()
        bar = None
        if self.progress:
            from tqdm import tqdm

            # Plain tqdm: it needs no widgets in a notebook, and redraws at most twice a second.
            bar = tqdm(
                total=round(timeout), desc="starting the app", bar_format="{desc}: {n:.0f} s", mininterval=0.5
            )
        try:
            return self._poll_health(start, timeout, bar)
        finally:
            if bar is not None:
                bar.close()

    def _poll_health(self, start: float, timeout: float, bar: Any) -> dict[str, Any]:
        last = "no answer yet"
        with httpx.Client(base_url=self.base_url, trust_env=False, timeout=5.0) as client:
            while time.monotonic() < start + timeout:
                if bar is not None:
                    bar.update(time.monotonic() - start - bar.n)
                if self.proc is not None and self.proc.poll() is not None:
                    raise AppStartError(
                        f"The app exited with code {self.proc.returncode} before answering /health. "
                        f"Its output ends with:\n{self.log_tail()}"
                    )
                try:
                    response = client.get("/health")
                    if response.status_code == 200:
                        if bar is not None:
                            bar.set_description_str("the app answered /health after", refresh=False)
                            bar.update(time.monotonic() - start - bar.n)
                        return dict(response.json())
                    last = f"HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    last = type(exc).__name__
                time.sleep(0.1)
        raise AppStartError(
            f"The app did not answer /health within {timeout:g} s ({last}). Its output ends with:\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Asks the app to stop (SIGTERM), kills it after `timeout` seconds; safe to call twice."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        if self._log is not None:
            self._log.close()
            self._log = None
        atexit.unregister(self.stop)

    def __enter__(self) -> LocalApp:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def open_app(
    base_url: str = "",
    *,
    reviewer_password: str = "",
    admin_token: str = "",
    settings: Mapping[str, str | None] | None = None,
    progress: bool = True,
) -> tuple[KitClient, LocalApp | None]:
    """A client on the app at `base_url`; with no `base_url`, on a LocalApp started with `settings`.

    Credentials not given are the started app's generated ones (for a remote app they stay unset, and
    the admin and reviewer checks will say so). Returns (client, the started app or None).
    """
    app = None
    if not base_url:
        chosen = dict(settings or {})
        if reviewer_password:
            chosen["DACA_REVIEWER_PASSWORD"] = reviewer_password
        if admin_token:
            chosen["DACA_ADMIN_TOKEN"] = admin_token
        app = LocalApp(chosen, progress=progress).start()
        base_url, reviewer_password, admin_token = app.base_url, app.reviewer_password, app.admin_token
    client = KitClient(base_url, reviewer_password=reviewer_password or None, admin_token=admin_token or None)
    if app is None:
        try:
            client.health()
        except httpx.HTTPError as exc:
            client.close()
            raise AppStartError(
                f"No app answers at {base_url} ({type(exc).__name__}): check BASE_URL, and that the Space is "
                "running (its page shows the state; opening it wakes a sleeping Space)."
            ) from None
    return client, app
