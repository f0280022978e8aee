"""`WEB_CONCURRENCY` worker processes of `python app.py` on one port.

    WEB_CONCURRENCY=4 DATABASE_URL=postgresql://... REDIS_URL=redis://... python app.py

This process binds the port and starts the workers (each a fresh interpreter, `spawn`), which accept
connections on the shared socket: the kernel spreads them. Every worker builds its own Kit and serves the
whole REST API; their workflows meet in the shared database (leases, so each step runs once) and hear of
each other's steps through the wake-up backend (Redis pub/sub). Worker 0 also serves the Gradio UI, on
the shared port and on a private loopback port; the others relay the UI's paths to it there
(`daca_kit.web.relay`), because a Gradio session must stay in one process.

A worker that dies is started again (its pending reviews are in the database meanwhile, and the others
serve REST); a worker that exits with an error within its first seconds stops the whole app with its exit
status, since that is a setting or a service to fix, not a crash to retry. SIGTERM or SIGINT stops them all.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import secrets
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import Any

from daca_kit.settings import Settings

log = logging.getLogger(__name__)

START_GRACE = 20.0  # seconds: a worker that exits sooner failed to start


@dataclass(frozen=True)
class WorkerRole:
    """What one worker is: its index, how many there are, and where the UI worker listens."""

    index: int
    count: int
    ui_port: int | None  # None: no UI (--api-only)
    relay_token: str

    @property
    def counts_events(self) -> bool:
        """Whether this worker consumes the analytics queue of a broker: the last one only (not the UI's),
        so the queue's deliveries arrive in one place and are counted in larger batches. While it restarts,
        events wait in the durable queue."""
        return self.index == self.count - 1

    @property
    def serves_ui(self) -> bool:
        return self.ui_port is not None and self.index == 0

    def public(self) -> dict[str, Any]:
        return {"index": self.index, "count": self.count, "pid": os.getpid()}


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve_workers(settings: Settings, *, with_ui: bool = True, log_level: str = "info") -> None:
    """Runs `settings.web_concurrency` workers until SIGTERM/SIGINT; exits like a worker that failed to start."""
    count = settings.web_concurrency
    if settings.reviewer_password is None and not settings.reviewers:
        # One generated password for all workers (each would make its own), printed once, never logged.
        password = secrets.token_urlsafe(12)
        os.environ["DACA_REVIEWER_PASSWORD"] = password
        print(
            f"Reviewer login for this run: user 'reviewer', password '{password}' "
            "(set DACA_REVIEWER_PASSWORD to choose one)",
            file=sys.stderr,
            flush=True,
        )
    public = bind(settings.host, settings.port)
    ui_socket = bind("127.0.0.1", 0) if with_ui else None
    ui_port = ui_socket.getsockname()[1] if ui_socket is not None else None
    token = secrets.token_urlsafe(32)
    context = multiprocessing.get_context("spawn")

    def start(index: int) -> BaseProcess:
        role = WorkerRole(index=index, count=count, ui_port=ui_port, relay_token=token)
        sockets = [public] + ([ui_socket] if role.serves_ui and ui_socket is not None else [])
        proc = context.Process(
            target=run_worker, args=(role, sockets, with_ui, log_level), name=f"daca-worker-{index}"
        )
        proc.start()
        return proc

    stopping: list[int] = []

    def stop(signum: int, _frame: Any) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    shown = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    print(
        f"daca_kit is serving on http://{shown}:{settings.port}/ with {count} worker processes "
        f"(REST API in each{', UI in worker 0' if with_ui else ''})",
        file=sys.stderr,
        flush=True,
    )
    workers = {i: (start(i), time.monotonic()) for i in range(count)}
    starts = dict.fromkeys(workers, 1)  # how often each worker was started
    quick = dict.fromkeys(workers, 0)  # its failures in a row, each soon after its start
    due: dict[int, float] = {}  # workers to start again, and when
    status = 0
    try:
        while not stopping:
            time.sleep(0.2)
            for index, when in list(due.items()):
                if time.monotonic() >= when:
                    del due[index]
                    workers[index] = (start(index), time.monotonic())
                    starts[index] += 1
            for index, (proc, started) in list(workers.items()):
                if index in due or proc.is_alive() or stopping:
                    continue
                code = proc.exitcode or 0
                soon = time.monotonic() - started < START_GRACE
                # The first start exited by itself with an error: a setting or a service to fix, not a
                # crash to retry (a signal, such as SIGKILL from the OOM killer, is a crash).
                if starts[index] == 1 and soon and code > 0:
                    log.error("worker %d failed to start (exit status %s); stopping", index, code)
                    status = code
                    stopping.append(0)
                    break
                quick[index] = quick[index] + 1 if soon else 0
                wait = min(2.0 ** quick[index], 30.0) if quick[index] else 0.0  # a failing one, ever slower
                log.warning(
                    "worker %d (pid %s) ended with status %s; starting it again in %.0f s",
                    index,
                    proc.pid,
                    code,
                    wait,
                )
                due[index] = time.monotonic() + wait
    finally:
        for proc, _ in workers.values():
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc, _ in workers.values():
            proc.join(max(0.1, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
        public.close()
        if ui_socket is not None:
            ui_socket.close()
    if status:
        raise SystemExit(status)


def run_worker(role: WorkerRole, sockets: list[socket.socket], with_ui: bool, log_level: str) -> None:
    """One worker's life (in its own interpreter): its Kit, its app, uvicorn on the shared sockets."""
    from daca_kit.errors import DacaError
    from daca_kit.settings import load_settings
    from daca_kit.web.server import prepare, run_uvicorn

    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s %(levelname)s worker{role.index} %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per relayed request otherwise
    _end_with_parent()
    try:
        settings = load_settings()
        app = prepare(settings, with_ui=with_ui and role.serves_ui, role=role)
    except DacaError as exc:
        print(f"daca_kit cannot start: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    run_uvicorn(app, settings, log_level=log_level, sockets=sockets)


def _end_with_parent() -> None:
    """Ends this worker when the supervisor is gone (even a SIGKILL of it leaves no worker on the port)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
