"""Each Space target's folder, installed as its Space would install it, runs the app and chats.

For zerogpu (Python 3.12) and cpu (Python 3.11) the folder's own requirements.txt goes into a fresh venv of
the target's Python and `python app.py` starts from the folder, as a Gradio SDK Space does. For docker the
venv gets what the Dockerfile's builder stage installs (the hashed lock on Python 3.11, the image's
python:3.11-slim, then the package) and the app starts through docker/supervise.py from a folder holding
only what the image's final stage copies. Each app then answers /health, the UI's page and a chat turn
over REST. On zerogpu the app also starts as on ZeroGPU hardware (SPACES_ZERO_GPU=true), against a local
stand-in of the platform's device API, and must register its @spaces.GPU function and report it there.

Installs come from PyPI at test time (nothing is downloaded while the app runs); the venvs are kept in
build/venvs/ and reused while the locks are unchanged (tests/support/spacevenv.py).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from daca_kit.ops import space
from daca_kit.ops.launcher import LocalApp
from tests.support.spacevenv import find_python, space_venv

pytestmark = [pytest.mark.slow]


def python_for(target: str) -> Path:
    """The target's Python; skipped with the reason when absent (failed under DACA_REQUIRE_SERVICES=1)."""
    minor = space.TARGETS[target].python
    found = find_python(minor)
    if found is None:
        reason = f"no Python {minor} here (set DACA_PYTHON_{minor.replace('.', '_')} to one)"
        if os.environ.get("DACA_REQUIRE_SERVICES") == "1":
            pytest.fail(reason + " and DACA_REQUIRE_SERVICES=1")
        pytest.skip(reason)
    return found


def run_folder(folder: Path, target: str, dest: Path) -> tuple[Path, list[str]]:
    """Where the app starts and the command relative to it: the folder itself, or for docker the image's
    final stage (app.py, components/, docker/supervise.py; the package is installed in the venv)."""
    if target != "docker":
        return folder, ["app.py"]
    dest.mkdir()
    shutil.copy2(folder / "app.py", dest / "app.py")
    shutil.copytree(folder / "components", dest / "components")
    (dest / "docker").mkdir()
    shutil.copy2(folder / "docker" / "supervise.py", dest / "docker" / "supervise.py")
    return dest, ["docker/supervise.py"]


def start_app(venv: Path, workdir: Path, command: list[str], **extra: Any) -> LocalApp:
    app = LocalApp(
        extra.pop("settings", None),
        workdir=workdir,
        command=[str(venv / "bin" / "python"), *command],
        extra_env={"GRADIO_ANALYTICS_ENABLED": "False", "PYTHONNOUSERSITE": "1", **extra.pop("env", {})},
        startup_timeout=180,
    )
    return app.start()


def chat_through(app: LocalApp) -> dict[str, Any]:
    """/health, the UI's page and one chat turn over REST; returns /health's body."""
    with app.client(timeout=60) as http:
        health = http.get("/health").json()
        assert health["status"] == "healthy", health
        assert http.get("/").status_code == 200  # the Gradio UI is mounted
        turn = http.post("/chat/?wait=20", json={"user_id": "space-user", "text": "Hello from the Space!"})
        assert turn.status_code == 200 and turn.json()["metadata"]["status"] == "completed", turn.text
        [row] = http.get("/conversations/space-user", headers=app.admin_headers).json()  # not public
        assert row["message"] == "Hello from the Space!" and row["reply"] == turn.json()["reply"]
    return health


@pytest.mark.parametrize("target", ["zerogpu", "cpu", "docker"])
def test_the_target_folder_installs_and_chats(tmp_path: Path, target: str) -> None:
    python = python_for(target)
    folder = space.build_space(tmp_path / "space", target=target).path
    assert space.check_space(folder) == []
    venv = space_venv(folder, target, python)
    workdir, command = run_folder(folder, target, tmp_path / "image")
    app = start_app(venv, workdir, command)
    try:
        health = chat_through(app)
        assert health["backends"]["database"]["kind"] == "sqlite"
        assert "ZeroGPU" not in app.output()  # nothing ZeroGPU-specific runs off ZeroGPU
    finally:
        app.stop()
    version = (venv / ".daca-complete").read_text().strip()
    assert version.startswith(space.TARGETS[target].python + ".")


@pytest.fixture
def device_api() -> Iterator[tuple[str, list[str]]]:
    """A local stand-in for ZeroGPU's device API: answers the startup report, records every call."""
    calls: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            calls.append(f"POST {self.path}")
            body = json.dumps({}).encode()
            self.send_response(200 if self.path == "/startup-report" else 404)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", calls
    finally:
        server.shutdown()
        server.server_close()


def test_on_zerogpu_the_app_registers_its_gpu_function_and_reports_it(
    tmp_path: Path, device_api: tuple[str, list[str]]
) -> None:
    url, calls = device_api
    python = python_for("zerogpu")
    folder = space.build_space(tmp_path / "space", target="zerogpu").path
    venv = space_venv(folder, "zerogpu", python)
    app = start_app(
        venv,
        folder,
        ["app.py"],
        settings={"SPACES_ZERO_GPU": "true"},
        env={"SPACES_ZERO_DEVICE_API_URL": url},
    )
    try:
        assert calls == ["POST /startup-report"]  # sent before the server answered /health
        chat_through(app)
        assert "registered the no-op @spaces.GPU function" in app.output()
        assert calls == ["POST /startup-report"]  # no chat turn asked for a GPU
    finally:
        app.stop()


def test_a_folder_without_spaces_stops_on_zerogpu_with_a_sentence(tmp_path: Path) -> None:
    """The cpu folder has no `spaces`: put on ZeroGPU hardware, it stops with the sentence naming the target."""
    python = python_for("cpu")
    folder = space.build_space(tmp_path / "space", target="cpu").path
    venv = space_venv(folder, "cpu", python)
    with pytest.raises(RuntimeError, match="--target zerogpu"):
        start_app(venv, folder, ["app.py"], settings={"SPACES_ZERO_GPU": "true"})
