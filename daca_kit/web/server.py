"""Builds and serves the whole app: kit + REST API (+ Gradio UI when available) on one port.

python app.py    or    daca-kit serve --port 7860
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from daca_kit.bootstrap import bootstrap
from daca_kit.core.kit import Kit
from daca_kit.errors import ConfigError, DacaError
from daca_kit.settings import Settings, load_settings
from daca_kit.web.api import create_api
from daca_kit.web.auth import Auth
from daca_kit.web.workers import WorkerRole
from daca_kit.web.zerogpu import register_zero_gpu

log = logging.getLogger(__name__)


def build_app(
    kit: Kit, *, auth: Auth | None = None, with_ui: bool = True, role: WorkerRole | None = None
) -> FastAPI:
    """The REST API with the Gradio UI mounted at "/" (routes first, then the mount).

    With several workers (`role`), the UI is worker 0's; the others relay the UI's paths to it."""
    auth = auth or Auth.from_settings(kit.settings, kit.stores.keys)
    api = create_api(kit, auth=auth)
    api.state.worker = role.public() if role is not None else None
    if role is not None and role.ui_port is not None and not with_ui:
        from daca_kit.web.relay import UiRelay

        api.mount("/", UiRelay(port=role.ui_port, token=role.relay_token))
        return api
    if with_ui:
        try:
            from daca_kit.web.ui import mount_ui
        except ImportError:
            log.info("the Gradio UI module is not available; serving the REST API only")
        else:
            api = mount_ui(api, kit, auth)
    return api


def serve(settings: Settings, *, with_ui: bool = True, log_level: str = "info") -> None:
    if settings.web_concurrency > 1:
        from daca_kit.web.workers import serve_workers

        serve_workers(settings, with_ui=with_ui, log_level=log_level)
        return
    register_zero_gpu(settings)  # only on a ZeroGPU Space (SPACES_ZERO_GPU); nothing happens elsewhere
    app = prepare(settings, with_ui=with_ui)
    shown = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    print(
        f"daca_kit is serving on http://{shown}:{settings.port}/ (REST API and UI)",
        file=sys.stderr,
        flush=True,
    )
    run_uvicorn(app, settings, log_level=log_level)


def prepare(settings: Settings, *, with_ui: bool = True, role: WorkerRole | None = None) -> Any:
    """Bootstraps and starts a Kit and returns the ASGI app that serves it (the Kit closes with the app)."""
    kit = bootstrap(settings)
    auth = Auth.from_settings(settings, kit.stores.keys)
    if auth.generated_password:
        # Printed once, to the console only (never logged): set DACA_REVIEWER_PASSWORD to choose it.
        print(
            f"Reviewer login for this run: user 'reviewer', password '{auth.generated_password}' "
            "(set DACA_REVIEWER_PASSWORD to choose one)",
            file=sys.stderr,
            flush=True,
        )

    deferred = settings.runtime == "dapr"
    if role is not None and not role.counts_events and not kit.bus.backend.embedded:
        kit.consume_events = False  # one worker counts for all (see WorkerRole.counts_events)

    kit.start(defer_runtime=deferred)
    for warning in kit.warnings():
        log.warning("%s", warning)
    app = build_app(kit, auth=auth, with_ui=with_ui, role=role)
    inner = app.router.lifespan_context  # gr.mount_gradio_app's own: it starts the Gradio queue

    @asynccontextmanager
    async def lifespan(app_: Any) -> AsyncIterator[Any]:
        async with inner(app_) as state:
            if deferred:
                threading.Thread(
                    target=_start_runtime_when_listening, args=(kit, settings.port), daemon=True
                ).start()
            yield state
        kit.close()

    app.router.lifespan_context = lifespan
    if role is not None and role.serves_ui:
        from daca_kit.web.relay import RelayedClient

        return RelayedClient(app, token=role.relay_token)
    return app


def run_uvicorn(
    app: Any, settings: Settings, *, log_level: str = "info", sockets: list[socket.socket] | None = None
) -> None:
    import uvicorn

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    server.run(sockets=sockets)


def _start_runtime_when_listening(kit: Kit, port: int, timeout: float = 30.0) -> None:
    """Starts the workflow runtime once this server accepts connections (bounded wait)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    try:
        kit.start_runtime()
        log.info("workflow runtime started")
    except DacaError as exc:
        log.error("the workflow runtime did not start: %s", exc)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings()
        serve(settings)
    except ConfigError as exc:
        print(f"daca_kit cannot start: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except DacaError as exc:
        print(f"daca_kit cannot start: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
