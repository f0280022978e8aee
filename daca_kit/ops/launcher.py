"""The app as a child process on loopback, for notebooks, tests and the benchmark.

    with LocalApp({"DATABASE_URL": pg_url}) as app:       # `daca-kit serve --api-only` on a free port
        httpx.get(app.url("/health"))
    # stopped on leaving the block, or when the Python process that started it exits

    app = LocalApp(workdir=tmp_path, ui=True).start()     # `python app.py`, as Spaces runs it
    app.kill()                                            # SIGKILL: nothing is flushed, as in a crash
    app.start()                                           # again, same port, same settings, same log

The caller's `settings` (environment variables, DESIGN.md's names) are all the app sees of its
settings, so neither the caller's environment nor a `.env` file can change what runs: optional services
not named are set empty (off); every other setting is removed from the child's environment, so the
app's own default applies (a setting given as None is removed too); proxy variables are removed.
`DATABASE_URL` defaults to a fresh SQLite file in `workdir` (also when given as ""), and the reviewer
password and admin token are generated unless given. `workers=N` sets `WEB_CONCURRENCY=N` (worker
processes of one server); otherwise the caller's `WEB_CONCURRENCY` is removed too, so the app's default
applies. `status()` and `pids()` cover the process and its workers. `extra_env` adds variables that
are not settings (`PYTHONPATH`, `GRADIO_ANALYTICS_ENABLED`). The process runs in `workdir`, listens on
127.0.0.1 only and appends its output to `log_path` (default `workdir/app.log`) across restarts.

`ui=True` runs `python app.py` exactly as Spaces does. The default runs `daca-kit serve --api-only`: the
same server, kit and logging without mounting Gradio, whose import alone costs seconds of CPU. `command`
runs another server that keeps the app's conventions (reads `PORT` and `HOST`, answers `GET /health`):
the benchmark's raw-stack reference.
"""

from __future__ import annotations

import atexit
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import httpx

from daca_kit.errors import DacaError
from daca_kit.ops.client import KitClient
from daca_kit.settings import SERVICE_SETTINGS, setting_names

# Optional services: off ("") unless the caller names them.
OPTIONAL = SERVICE_SETTINGS
# Left out of the child's environment unless given, so the app's own default applies.
CONTROLLED = setting_names()
PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
WORKERS = "WEB_CONCURRENCY"  # the server's worker processes (uvicorn's, gunicorn's and most hosts' name)
PASSWORD, TOKEN = "DACA_REVIEWER_PASSWORD", "DACA_ADMIN_TOKEN"
# Spaces runs the checkout's app.py; an installed package has none (ui=True says so).
APP_PY = Path(__file__).resolve().parents[2] / "app.py"


def child_pids(pid: int) -> list[int]:
    """The processes `pid` started, and theirs (Linux /proc), e.g. a server's worker processes."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class AppStartError(DacaError, RuntimeError):
    """The app process exited or did not answer /health in time; the message ends with its log's tail.

    A RuntimeError too, so callers that know nothing of the kit's exception tree can catch it."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now, below the kernel's ephemeral range.

    A port the kernel hands out itself (`bind(0)`, an outgoing connection) may be handed out again before
    the caller binds it, for instance as another app's private UI port; one below that range is not.
    """
    low = _ephemeral_low()
    for _attempt in range(100):
        port = random.randint(max(1024, low - 12000), low - 1)
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:  # a crowded range: take what the kernel gives
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default range starts here


def process_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (KiB) and CPU time (`cpu_ms`, user + system) of a process, from /proc (Linux)."""
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1])
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        out["cpu_ms"] = round((int(fields[11]) + int(fields[12])) * 1000 / ticks)
    except (OSError, ValueError, IndexError):
        pass
    return out


class LocalApp:
    """The app (`daca-kit serve --api-only`, or `python app.py` with `ui=True`) on 127.0.0.1:<port>.

        with LocalApp({"REDIS_URL": redis_url}, workdir=tmp_path) as app: ...

    `start` waits for GET /health; `stop` is a graceful SIGTERM, `kill` a SIGKILL; either can be followed
    by `start` on the same port. See the module docstring for how settings are isolated.
    """

    def __init__(
        self,
        settings: Mapping[str, str | None] | None = None,
        *,
        workdir: str | os.PathLike[str] | None = None,
        port: int | None = None,
        ui: bool = False,
        command: Sequence[str] | None = None,
        extra_env: Mapping[str, str] | None = None,
        log_path: str | os.PathLike[str] | None = None,
        startup_timeout: float = 60.0,
        progress: bool = False,
        workers: int | None = None,
    ) -> None:
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="daca-app-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = Path(log_path) if log_path else self.workdir / "app.log"
        self.port = port or free_port()
        self.ui = ui
        self.command = list(command) if command else None
        self.extra_env = dict(extra_env or {})
        self.startup_timeout = startup_timeout
        self.progress = progress
        self.env: dict[str, str] = {name: "" for name in OPTIONAL}
        self.env["DATABASE_URL"] = f"sqlite:///{self.workdir / 'daca.db'}"
        self.env[PASSWORD] = secrets.token_urlsafe(16)
        self.env[TOKEN] = secrets.token_urlsafe(24)
        if workers is not None:
            self.env[WORKERS] = str(workers)
        for name, value in (settings or {}).items():
            if value is None:
                self.env.pop(name, None)  # the app's default
            elif not (name == "DATABASE_URL" and value == ""):
                self.env[name] = str(value)
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    def __repr__(self) -> str:
        return f"LocalApp({self.base_url}, running={self.running})"  # never the settings: they hold secrets

    # -- what callers need -------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def client(self, **kwargs: Any) -> httpx.Client:
        """An httpx client on the app that ignores proxy variables (the app is on loopback)."""
        return httpx.Client(
            base_url=self.base_url, trust_env=False, timeout=kwargs.pop("timeout", 30.0), **kwargs
        )

    @property
    def reviewer_password(self) -> str:
        """ "" when the caller removed it (then the app generates one and prints it to its log)."""
        return self.env.get(PASSWORD, "")

    @property
    def admin_token(self) -> str:
        return self.env.get(TOKEN, "")

    @property
    def reviewer_auth(self) -> tuple[str, str]:
        return ("reviewer", self.reviewer_password)

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    @property
    def database_url(self) -> str:
        return self.env.get("DATABASE_URL", "")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def pids(self) -> list[int]:
        """The running process and its workers (the processes it started); [] when it is not running."""
        if self.proc is None or not self.running:
            return []
        return [self.proc.pid, *child_pids(self.proc.pid)]

    def status(self) -> dict[str, int]:
        """Memory and CPU time (see `process_status`) summed over `pids()`; {} when it is not running."""
        total: dict[str, int] = {}
        for pid in self.pids():
            for key, value in process_status(pid).items():
                total[key] = total.get(key, 0) + value
        return total

    def output(self) -> str:
        """Everything the process printed so far, over all its runs, as written (for secret scans)."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        """The end of the process's output, with the reviewer password, admin token and keys removed."""
        text = self.output()
        for name, value in self.env.items():
            if value and len(value) >= 4 and (name in (PASSWORD, TOKEN) or "KEY" in name):
                text = text.replace(value, "***")
        return "\n".join(text.splitlines()[-lines:])

    # -- lifecycle ---------------------------------------------------------------------------------
    def argv(self) -> list[str]:
        if self.command:
            return self.command
        if self.ui:
            if not APP_PY.exists():
                raise AppStartError(f"ui=True runs app.py from a checkout of daca_kit; {APP_PY} is missing.")
            return [sys.executable, str(APP_PY)]
        return [sys.executable, "-m", "daca_kit.cli", "serve", "--api-only"]

    def child_env(self) -> dict[str, str]:
        """The environment the process gets: the caller's minus settings and proxies, plus `settings`."""
        removed = {*CONTROLLED, *PROXIES, WORKERS}
        env = {k: v for k, v in os.environ.items() if k not in removed}
        env.update(self.env)
        env.update({"PORT": str(self.port), "HOST": "127.0.0.1", "PYTHONUNBUFFERED": "1"})
        env.update(self.extra_env)
        return env

    def start(self) -> Self:
        """Starts the process (unless it runs) and waits until GET /health answers; AppStartError if not."""
        if self.running:
            return self
        argv = self.argv()
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in kill()/stop()
        self.proc = subprocess.Popen(
            argv,
            cwd=self.workdir,  # where there is no .env, and where a relative SQLite path lands
            env=self.child_env(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        atexit.register(self.stop)
        try:
            self.wait_healthy(self.startup_timeout)
        except AppStartError:
            self.kill()
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
        with self.client(timeout=5.0) as client:
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
                time.sleep(0.05)
        raise AppStartError(
            f"The app did not answer /health within {timeout:g} s ({last}). Its output ends with:\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Asks the process to stop (SIGTERM) and kills it after `timeout` seconds; safe to call twice."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to flush, close or finish anything (a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None
        atexit.unregister(self.stop)

    def restart(self) -> Self:
        """A crash and a start on the same port."""
        self.kill()
        return self.start()

    def __enter__(self) -> Self:
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
            chosen[PASSWORD] = reviewer_password
        if admin_token:
            chosen[TOKEN] = admin_token
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
