"""What a deployment checks about itself: the ports of its services at start (in /health and the Usage
tab), ZeroGPU's one decorated function, and notebook 03's view of a deployment's .env."""

from __future__ import annotations

import importlib.util
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from daca_kit.adapters.outbound import reachability
from daca_kit.bootstrap import bootstrap
from daca_kit.core.models import PortCheck, Reachability
from daca_kit.errors import ConfigError
from daca_kit.ops import verify
from daca_kit.ops.notebook import env_path
from daca_kit.ops.space import project_root
from daca_kit.web.api import create_api
from daca_kit.web.ui.usage import reach_text
from daca_kit.web.zerogpu import MISSING_SPACES, register_zero_gpu


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_checked(kit: Any, timeout: float = 10.0) -> Reachability:
    deadline = time.monotonic() + timeout
    while not kit.reachability.checked:
        assert time.monotonic() < deadline, "the start-up port check did not finish"
        time.sleep(0.02)
    return kit.reachability


# -- the ports of the configured services, checked at start -----------------------------------------------------
def test_a_closed_redis_port_names_the_upstash_rest_fallback(settings_factory) -> None:  # type: ignore[no-untyped-def]
    port = closed_port()
    found = reachability(settings_factory(redis_url=f"redis://127.0.0.1:{port}/0"), timeout=1.0)
    assert found.checked and len(found.ports) == 1
    [check] = found.ports
    assert (check.port, check.setting, check.open, check.detail) == (port, "REDIS_URL", False, "refused")
    assert any("Upstash's REST API over port 443" in note for note in found.fallbacks)


def test_a_closed_database_port_names_a_postgres_on_an_open_port(settings_factory) -> None:  # type: ignore[no-untyped-def]
    port = closed_port()
    found = reachability(settings_factory(database_url=f"postgresql://u:p@127.0.0.1:{port}/db"), timeout=1.0)
    assert [p.setting for p in found.closed] == ["DATABASE_URL"]
    assert any("Postgres reachable on a port this host may open (443, or 5432" in n for n in found.fallbacks)
    assert "u:p" not in " ".join(found.fallbacks)


def test_embedded_settings_probe_nothing(settings_factory) -> None:  # type: ignore[no-untyped-def]
    assert reachability(settings_factory()) == Reachability(checked=True)


def test_health_and_warnings_show_what_the_start_up_check_found(settings_factory, fakes) -> None:  # type: ignore[no-untyped-def]
    kit = bootstrap(settings_factory(), **fakes)
    closed = PortCheck("db.example.com", 26257, "cockroachdb", "DATABASE_URL", False, "timed out")
    kit.reach = lambda: Reachability(ports=(closed,), fallbacks=("Use a Postgres on 443.",), checked=True)
    kit.start()
    try:
        wait_checked(kit)
        health = TestClient(create_api(kit)).get("/health").json()
        assert health["reachability"]["checked"] is True
        assert health["reachability"]["ports"][0] == {
            "host": "db.example.com",
            "port": 26257,
            "service": "cockroachdb",
            "setting": "DATABASE_URL",
            "open": False,
            "detail": "timed out",
        }  # /health leaves out empty fields
        assert "Use a Postgres on 443." in health["warnings"]
        assert health["backends"]["database"]["kind"] == "sqlite"
        # a second call inside the cache window carries the same fields
        again = TestClient(create_api(kit)).get("/health").json()
        assert again["reachability"] == health["reachability"] and again["warnings"] == health["warnings"]
        shown = reach_text(kit.reachability)
        assert (
            "`DATABASE_URL` port 26257: **closed** (timed out)" in shown and "Use a Postgres on 443." in shown
        )
        assert "db.example.com" not in shown  # the Usage tab is public: no host names
    finally:
        kit.close()


def test_the_usage_tab_says_when_nothing_was_checked_yet() -> None:
    assert "being checked" in reach_text(Reachability())
    assert "every part runs embedded" in reach_text(Reachability(checked=True))


# -- ZeroGPU ---------------------------------------------------------------------------------------------------
def test_off_zerogpu_nothing_is_registered_and_spaces_is_not_needed(settings_factory) -> None:  # type: ignore[no-untyped-def]
    assert register_zero_gpu(settings_factory()) is None


@pytest.mark.skipif(importlib.util.find_spec("spaces") is not None, reason="the spaces package is installed")
def test_on_zerogpu_without_the_spaces_package_the_sentence_names_the_target(settings_factory) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as caught:
        register_zero_gpu(settings_factory(zero_gpu=True))
    assert str(caught.value) == MISSING_SPACES and "--target zerogpu" in MISSING_SPACES


def test_the_platform_variables_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from daca_kit.settings import Settings

    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    monkeypatch.setenv("GEMINI_REQUESTS_PER_DAY", "180")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.zero_gpu is True and settings.gemini_requests_per_day == 180
    monkeypatch.setenv("SPACES_ZERO_GPU", "")
    monkeypatch.setenv("GEMINI_REQUESTS_PER_DAY", "")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.zero_gpu is False and settings.gemini_requests_per_day is None


# -- notebook 03's view of a deployment ------------------------------------------------------------------------
def test_env_file_means_the_same_in_every_notebook() -> None:
    root = project_root()
    assert env_path("") == root / ".env"
    assert env_path("deploy/space.env") == root / "deploy" / "space.env"
    assert env_path("/srv/app/.env") == Path("/srv/app/.env")


def test_a_parameter_wins_over_the_env_file() -> None:
    saved = {"DATABASE_URL": "postgresql://h/db", "REDIS_URL": "redis://h:6379", "HF_TOKEN": "hf_x"}
    chosen = verify.backend_settings(saved, DATABASE_URL="", REDIS_URL="redis://other:6379")
    assert chosen == {"DATABASE_URL": "postgresql://h/db", "REDIS_URL": "redis://other:6379"}


def test_each_run_has_users_of_its_own() -> None:
    alice, bob, run = verify.run_users()
    assert (alice, bob) == (f"alice-{run}", f"bob-{run}") and verify.run_users()[2] != run
    assert verify.run_users("fixed") == ("alice-fixed", "bob-fixed", "fixed")


def test_a_deployment_that_ignores_its_services_is_named_setting_by_setting() -> None:
    settings = {
        "DATABASE_URL": "cockroachdb://u:pw@h:26257/db",
        "UPSTASH_REDIS_REST_URL": "https://x.upstash.io",
        "UPSTASH_REDIS_REST_TOKEN": "t",
        "GEMINI_API_KEY": "k",
    }
    embedded = {"backends": {p: {"kind": k} for p, k in (("database", "sqlite"), ("counters", "sql"))}}
    problems = verify.unused_services(
        embedded | {"backends": {**embedded["backends"], "model": {}}}, settings
    )
    assert problems[0].startswith(
        "DATABASE_URL names cockroachdb for the database, but /health says the app uses sqlite"
    )
    assert problems[1].startswith("UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN names upstash-rest")
    assert "uses nothing" in problems[2] and "pw" not in " ".join(problems)
    using = {
        "backends": {
            "database": {"kind": "cockroachdb"},
            "counters": {"kind": "upstash-rest"},
            "model": {"kind": "gemini"},
        }
    }
    assert verify.unused_services(using, settings) == []
    assert verify.expected_kinds({"DACA_RUNTIME": "dapr", "REDIS_URL": "redis://h"}) == {
        "counters": ("dapr-state",),
        "events": ("dapr-pubsub",),
    }
