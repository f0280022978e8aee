"""The launcher that starts the app for notebooks, tests and the bench: what the app process sees of the
caller's environment, and what a failed start tells the caller. (Starting the real app is exercised by
tests/fault, tests/security and the notebooks.)"""

from __future__ import annotations

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
