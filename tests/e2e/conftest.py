"""Fixtures for end-to-end tests: the real app served on a free local port, and headless Chromium.

`live_app` runs `daca_kit.web.server.build_app` under uvicorn in a thread, on embedded defaults (a fresh
SQLite file, offline model); `app_process` runs `python app.py` itself in a subprocess. `chromium` is
Debian's Chromium driven by Playwright; it is skipped with the reason when /usr/bin/chromium is missing,
and fails instead when DACA_REQUIRE_BROWSER=1. `GradioSession` calls Gradio functions over raw HTTP.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from daca_kit.bootstrap import bootstrap
from daca_kit.core.kit import Kit
from daca_kit.ops.launcher import AppStartError, LocalApp, free_port
from daca_kit.web.auth import Auth

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
REVIEWER_PASSWORD = "app-process-reviewer-pw"


@dataclass
class LiveApp:
    """A running app: its base URL, the kit behind it and the reviewer password."""

    url: str
    kit: Kit
    reviewer_password: str


@contextmanager
def serve_live(settings: Any, *, with_ui: bool = True, **ports: Any) -> Iterator[LiveApp]:
    """The app of `settings` under uvicorn in a thread on a free loopback port, until the block ends;
    `ports` go to `bootstrap` (a fake model, say), `with_ui=False` serves the REST API alone."""
    import uvicorn

    from daca_kit.web.server import build_app

    password = settings.reviewer_password.get_secret_value()
    kit = bootstrap(settings, **ports).start()
    try:
        app = build_app(kit, auth=Auth.from_settings(settings, kit.stores.keys), with_ui=with_ui)
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=port,
                log_level="warning",
                access_log=False,
                lifespan="on",
                # gradio_client leaves its heartbeat stream open; do not wait for it on shutdown.
                timeout_graceful_shutdown=1,
            )
        )
        thread = threading.Thread(target=server.run, name="live-app", daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                pytest.fail("the app did not start within 30 s")
            time.sleep(0.05)
        try:
            yield LiveApp(url=f"http://127.0.0.1:{port}", kit=kit, reviewer_password=password)
        finally:
            server.should_exit = True
            thread.join(timeout=15)
    finally:
        kit.close()


@pytest.fixture
def live_app(settings_factory: Any) -> Iterator[LiveApp]:
    with serve_live(settings_factory()) as app:
        yield app


@pytest.fixture
def live_app_behind_proxy(settings_factory: Any) -> Iterator[LiveApp]:
    """The app as on a Space: it trusts the one proxy in front of it (X-Forwarded-For)."""
    with serve_live(settings_factory(space_id="someone/daca")) as app:
        yield app


@pytest.fixture
def app_process(tmp_path: Path) -> Iterator[str]:
    """`python app.py` (what Spaces runs) in a subprocess on a free port, on embedded defaults; yields its URL."""
    app = LocalApp(
        {"DACA_REVIEWER_PASSWORD": REVIEWER_PASSWORD, "DACA_ADMIN_TOKEN": None},
        workdir=tmp_path,
        ui=True,
        extra_env={"GRADIO_ANALYTICS_ENABLED": "False"},
        startup_timeout=90,
    )
    try:
        app.start()
    except AppStartError as exc:
        pytest.fail(f"app.py did not start: {exc}")
    try:
        yield app.base_url
    finally:
        app.stop(timeout=5)


def _need_chromium() -> None:
    if CHROMIUM.exists():
        return
    reason = f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)"
    if os.environ.get("DACA_REQUIRE_BROWSER") == "1":
        pytest.fail(reason + " and DACA_REQUIRE_BROWSER=1")
    pytest.skip(reason)


@pytest.fixture
def chromium() -> Iterator[Any]:
    """Headless Chromium (Playwright's sync API)."""
    _need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class GradioSession:
    """Calls the app's Gradio functions over raw HTTP, as one browser session would (queue/join + SSE).

        session = GradioSession(url); done, logs = session.call("review_login", ["", "pw"])

    Functions are found by `api_name` in /config, private ones included: this is what an attacker
    without gradio_client would do. `done` is the `process_completed` message; `logs` are the
    gr.Info/gr.Warning messages sent on the way.
    """

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        import httpx

        self.url = url
        self.http = httpx.Client(base_url=url, timeout=30, headers=headers)
        self.session_hash = uuid.uuid4().hex[:12]
        config = self.http.get("/config").json()
        self.functions = {d["api_name"]: d for d in config["dependencies"]}

    def join(self, api_name: str, data: list[Any], event_data: Any = None) -> Any:
        """POSTs the call to the queue and returns the raw HTTP response."""
        fn = self.functions[api_name]
        body = {
            "data": data,
            "fn_index": fn["id"],
            "session_hash": self.session_hash,
            "event_data": event_data,
            "trigger_id": fn["targets"][0][0] if fn["targets"] else None,
        }
        return self.http.post("/gradio_api/queue/join", json=body)

    def call(
        self, api_name: str, data: list[Any], event_data: Any = None, timeout: float = 20.0
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        import httpx

        joined = self.join(api_name, data, event_data)
        joined.raise_for_status()
        event_id = joined.json()["event_id"]
        logs: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        params = {"session_hash": self.session_hash}
        try:
            with self.http.stream("GET", "/gradio_api/queue/data", params=params, timeout=timeout) as resp:
                for line in resp.iter_lines():
                    if time.monotonic() > deadline:
                        break
                    if not line.startswith("data:"):
                        continue
                    message = json.loads(line[5:])
                    if message.get("event_id") != event_id:
                        continue
                    if message.get("msg") == "log":
                        logs.append(message)
                    if message.get("msg") == "process_completed":
                        return message, logs
        except httpx.ReadTimeout:
            pass
        raise AssertionError(f"{api_name} did not complete within {timeout:g} s")

    def close(self) -> None:
        self.http.close()
