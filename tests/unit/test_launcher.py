"""The launcher that starts the app for notebooks, tests and the bench: what the app process sees of the
caller's environment, and what a failed start tells the caller. (Starting the real app is exercised by
tests/fault, tests/security and the notebooks.)"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from daca_kit.ops.launcher import AppStartError, LocalApp, free_port

AMQP = "amqp://guest:guest@127.0.0.1:5672/%2F"


def test_the_app_sees_only_the_settings_it_was_given(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://developer:pw@elsewhere:6379/0")
    monkeypatch.setenv("DACA_HISTORY_TURNS", "3")
    monkeypatch.setenv("DB_CONNECTION", "postgresql://developer@elsewhere/db")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("LANG", "C.UTF-8")
    app = LocalApp(
        {"AMQP_URL": AMQP, "DACA_RATE_LIMIT": None, "DATABASE_URL": ""},
        workdir=tmp_path,
        extra_env={"PYTHONPATH": "/opt/extra"},
    )

    env = app.child_env()

    assert env["REDIS_URL"] == ""  # an optional service not named is off
    assert "DACA_HISTORY_TURNS" not in env and "DB_CONNECTION" not in env  # the app's defaults apply
    assert "DACA_RATE_LIMIT" not in env  # None: the app's default
    assert "HTTPS_PROXY" not in env
    assert env["LANG"] == "C.UTF-8"  # what is not a setting passes through
    assert env["AMQP_URL"] == AMQP
    assert env["DATABASE_URL"] == f"sqlite:///{tmp_path / 'daca.db'}"  # "" means a fresh SQLite file
    assert (env["HOST"], env["PORT"]) == ("127.0.0.1", str(app.port))
    assert env["PYTHONPATH"] == "/opt/extra"
    assert env["DACA_REVIEWER_PASSWORD"] == app.reviewer_password and len(app.reviewer_password) >= 16
    assert env["DACA_ADMIN_TOKEN"] == app.admin_token and len(app.admin_token) >= 24
    assert LocalApp(workdir=tmp_path).reviewer_password != app.reviewer_password  # generated per app
    assert app.reviewer_password not in repr(app) and app.admin_token not in repr(app)


def test_ui_runs_app_py_as_spaces_does_and_the_default_serves_the_api_only(tmp_path: Path) -> None:
    assert LocalApp(workdir=tmp_path).argv()[1:] == ["-m", "daca_kit.cli", "serve", "--api-only"]
    assert LocalApp(workdir=tmp_path, ui=True).argv() == [
        sys.executable,
        str(Path(__file__).resolve().parents[2] / "app.py"),
    ]


def test_a_failed_start_says_so_with_the_log_tail_and_no_secrets(tmp_path: Path) -> None:
    port = free_port()
    script = "import os; print('starting with', os.environ['DACA_ADMIN_TOKEN']); raise SystemExit(3)"
    app = LocalApp(workdir=tmp_path, port=port, command=[sys.executable, "-c", script], startup_timeout=30)

    with pytest.raises(AppStartError, match="exited with code 3") as failure:
        app.start()

    assert "starting with ***" in str(failure.value)
    assert app.admin_token not in str(failure.value)
    assert app.admin_token in app.output()  # the log itself is kept as written, for secret scans
    assert not app.running and app.port == port


def test_workers_reach_the_app_as_web_concurrency_and_nothing_else_does(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "8")  # e.g. set by a host for the caller's own server

    assert "WEB_CONCURRENCY" not in LocalApp(workdir=tmp_path).child_env()  # the app's default applies
    assert LocalApp(workdir=tmp_path, workers=2).child_env()["WEB_CONCURRENCY"] == "2"


def test_status_and_pids_cover_the_processes_the_server_started(tmp_path: Path) -> None:
    worker = "import time; time.sleep(60)"
    server = (
        "import http.server, subprocess, sys\n"
        f"subprocess.Popen([sys.executable, '-c', {worker!r}])\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        self.send_response(200); self.send_header('Content-Type', 'application/json')\n"
        "        self.end_headers(); self.wfile.write(b'{}')\n"
        "http.server.HTTPServer(('127.0.0.1', int(__import__('os').environ['PORT'])), H).serve_forever()\n"
    )
    app = LocalApp(workdir=tmp_path, command=[sys.executable, "-c", server], startup_timeout=30)
    with app:
        pids = app.pids()
        assert pids[0] == app.pid and len(pids) == 2  # the server and the worker it started
        assert app.status()["VmRSS"] > 0
        worker_pid = pids[1]
    os.kill(worker_pid, signal.SIGTERM)  # a plain server's worker outlives its SIGTERM
