"""JupyterLab from the kit's venv, as the README opens it: notebook 00 in headless Chromium, Run All Cells,
and the last cell's output on the page; and nothing, neither the browser nor the server, tries the
internet on the way.

The server runs `jupyter lab` from this venv with the configuration `scripts/setup.sh dev` writes
(kernel `daca-kit`, no news, no update check, no PyPI extension listing) on a copy of the notebooks, so
the checked-in files are never touched. Its HTTP(S)_PROXY points at a local listener that records every
connection: a server-side fetch would show up there. The browser aborts and records every request that
does not go to the server.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from daca_kit.ops.launcher import free_port
from daca_kit.settings import setting_names

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
JUPYTER = Path(sys.prefix) / "bin" / "jupyter"
KERNEL = Path(sys.prefix) / "share" / "jupyter" / "kernels" / "daca-kit" / "kernel.json"
LAST_OUTPUT = "All parts run embedded: no free-tier quota applies."
TIMEOUT = 30_000  # ms


class RecordingProxy:
    """A TCP listener that stands in for a proxy: it records each connection and closes it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = int(self.sock.getsockname()[1])
        self.connections: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(1.0)
                try:
                    self.connections.append(conn.recv(200))
                except OSError:
                    self.connections.append(b"")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def jupyterlab(tmp_path: Path) -> Iterator[tuple[str, RecordingProxy]]:
    """`jupyter lab` from this venv on a copy of the notebooks; yields its URL (with token) and the proxy."""
    if not KERNEL.exists():
        pytest.fail("the kernel 'daca-kit' is not registered in this venv: run scripts/setup.sh dev")
    root = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    proxy = RecordingProxy()
    token = secrets.token_hex(16)
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in setting_names() and k not in ("HF_TOKEN", "CRONJOB_API_KEY")
    }
    env.update(
        {
            "HTTP_PROXY": f"http://127.0.0.1:{proxy.port}",
            "HTTPS_PROXY": f"http://127.0.0.1:{proxy.port}",
            "http_proxy": f"http://127.0.0.1:{proxy.port}",
            "https_proxy": f"http://127.0.0.1:{proxy.port}",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),  # not the developer's own
            "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime"),
            "JUPYTER_PLATFORM_DIRS": "1",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        }
    )
    argv = [
        str(JUPYTER),
        "lab",
        "--no-browser",
        f"--port={port}",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={root}",
        *(["--allow-root"] if os.geteuid() == 0 else []),
    ]
    log = (tmp_path / "jupyterlab.log").open("wb")
    proc = subprocess.Popen(argv, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited:\n{(tmp_path / 'jupyterlab.log').read_text()[-3000:]}")
            try:
                if (
                    httpx.get(f"{base}/api/status?token={token}", timeout=2, trust_env=False).status_code
                    == 200
                ):
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("jupyter lab did not answer within 90 s")
            time.sleep(0.3)
        yield f"{base}/lab/tree/00_quickstart_local.ipynb?token={token}", proxy
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
        proxy.close()


def test_notebook_00_runs_in_jupyterlab_without_the_internet(
    jupyterlab: tuple[str, RecordingProxy], chromium: Any, artifacts: Path
) -> None:
    from playwright.sync_api import expect

    url, proxy = jupyterlab
    outside: list[str] = []

    def only_the_server(route: Any) -> None:
        host = route.request.url.split("/")[2].split(":")[0]
        if host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    context.route("**/*", only_the_server)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    try:
        page.goto(url)
        # The notebook names the kit's kernel, and it starts without a "Select Kernel" dialog.
        expect(page.locator(".jp-Notebook")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("Python (daca_kit)").first).to_be_visible(timeout=60_000)
        expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_have_count(
            1, timeout=60_000
        )
        page.get_by_role("menubar").get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells").first.click()
        last = page.locator(".jp-OutputArea-output").filter(has_text=LAST_OUTPUT)
        expect(last).to_have_count(1, timeout=180_000)
        assert (
            page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
            .filter(has_text="Traceback")
            .count()
            == 0
        )
        page.screenshot(path=str(artifacts / "jupyterlab-00.png"), full_page=True)
    finally:
        context.close()
    assert outside == [], f"the browser tried the internet: {outside}"
    # What the page was told: no news, the announcements plugin (news and update checks) off, and an
    # extension manager that lists nothing from PyPI. Then the server's own endpoints for them, which
    # must answer without going out.
    base, _, query = url.partition("/lab/tree/")
    token = query.split("token=")[1]
    with httpx.Client(base_url=base, params={"token": token}, timeout=30, trust_env=False) as http:
        page_html = http.get("/lab").text
        found = re.search(
            r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', page_html, re.S
        )
        assert found, "no page config in /lab"
        config = json.loads(found.group(1))
        assert config["news"] == {"disabled": True}
        assert "@jupyterlab/apputils-extension:announcements" in config["disabledExtensions"]
        assert config["extensionManager"]["name"] == "read-only"
        assert http.get("/lab/api/news").json() == {"news": []}
        assert http.get("/lab/api/update").json() == {"notification": None}
        assert http.get("/lab/api/extensions", params={"query": "daca"}).json() == []
    assert proxy.connections == [], f"the JupyterLab server tried the internet: {proxy.connections}"
