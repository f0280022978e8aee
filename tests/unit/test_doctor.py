"""`daca-kit doctor`: each backend checked with one round trip, failures told apart, secrets never shown.

Failures are provoked on this machine only: a port nothing listens on at 127.0.0.1, a `.invalid` host
name (which never resolves), and wrong credentials against the local Postgres and RabbitMQ. Gemini is
the local Gemini REST stub.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from daca_kit.ops import doctor
from daca_kit.ops.doctor import (
    AUTH,
    DNS,
    EMBEDDED,
    EMBEDDED_NOTE,
    FAILED,
    MISSING,
    OK,
    PORT_CLOSED,
    TLS,
    PortCheck,
    PortTarget,
)
from daca_kit.ops.launcher import free_port
from tests.conftest import AMQP_HOST, AMQP_PORT, PG_HOST, PG_PORT, need
from tests.support.gemini_stub import GeminiStub

SECRET = "s3cret-Pa55word-for-doctor"


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield int(server.getsockname()[1])


def report_of(settings) -> str:  # type: ignore[no-untyped-def]
    results = doctor.run_checks(settings, timeout=3)
    ports = doctor.outbound_ports(settings=settings, timeout=1)
    return doctor.format_report(results, ports, doctor.fallbacks(ports, settings))


# -- embedded ------------------------------------------------------------------------------------------------
def test_nothing_configured_is_embedded_not_an_error(settings_factory, capsys) -> None:  # type: ignore[no-untyped-def]
    settings = settings_factory()
    results = doctor.run_checks(settings)
    assert [r.backend for r in results] == ["database", "counters", "events", "model"]
    assert all(r.status == EMBEDDED and not r.failed for r in results)
    assert all(r.message.startswith(EMBEDDED_NOTE) for r in results)
    assert {r.setting for r in results} == {"DATABASE_URL", "REDIS_URL", "AMQP_URL", "GEMINI_API_KEY"}
    assert doctor.main(settings) == 0
    printed = capsys.readouterr().out
    assert "All good: 4 embedded" in printed
    assert "nothing to probe" in printed


# -- network failures, before any driver speaks -----------------------------------------------------------------
def test_refused_port_is_reported_as_closed(settings_factory) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    settings = settings_factory(
        database_url=f"postgresql://daca:{SECRET}@127.0.0.1:{port}/daca",
        redis_url=f"redis://:{SECRET}@127.0.0.1:{port}/0",
        amqp_url=f"amqp://daca:{SECRET}@127.0.0.1:{port}/vh",
    )
    results = {r.backend: r for r in doctor.run_checks(settings, timeout=2)}
    for backend, setting in (("database", "DATABASE_URL"), ("counters", "REDIS_URL"), ("events", "AMQP_URL")):
        result = results[backend]
        assert result.status == FAILED and result.problem == PORT_CLOSED, result
        assert setting in result.message and f"port {port}" in result.message
    report = report_of(settings)
    assert SECRET not in report
    assert "FAILED" in report and f"127.0.0.1:{port}" in report


def test_unresolvable_host_is_reported_as_such(settings_factory) -> None:  # type: ignore[no-untyped-def]
    settings = settings_factory(
        database_url=f"cockroachdb://daca:{SECRET}@nonexistent.invalid:26257/defaultdb?sslmode=verify-full",
        amqp_url=f"amqps://daca:{SECRET}@nonexistent.invalid/daca",
        upstash_redis_rest_url="https://nonexistent.invalid",
        upstash_redis_rest_token=SECRET,
    )
    results = {r.backend: r for r in doctor.run_checks(settings, timeout=2)}
    assert results["database"].problem == DNS and "DATABASE_URL" in results["database"].message
    assert results["events"].problem == DNS and "AMQP_URL" in results["events"].message
    assert results["counters"].problem == DNS and "UPSTASH_REDIS_REST_URL" in results["counters"].message
    assert "nonexistent.invalid" in results["database"].message
    assert SECRET not in report_of(settings)


@pytest.mark.parametrize("backend", ["database", "counters", "events"])
def test_the_running_app_says_what_the_doctor_says(settings_factory, backend: str) -> None:  # type: ignore[no-untyped-def]
    from daca_kit.adapters.rabbitmq import PikaEventBus
    from daca_kit.adapters.redis import RedisCounters
    from daca_kit.adapters.sql import SqlDatabase
    from daca_kit.errors import BackendError

    port = free_port()
    urls = {
        "database": f"postgresql://daca:{SECRET}@127.0.0.1:{port}/daca",
        "counters": f"redis://:{SECRET}@127.0.0.1:{port}/0",
        "events": f"amqp://daca:{SECRET}@127.0.0.1:{port}/vh",
    }
    settings = settings_factory(
        database_url=urls["database"], redis_url=urls["counters"], amqp_url=urls["events"]
    )
    found = {r.backend: r for r in doctor.run_checks(settings, timeout=2)}[backend]
    use = {
        "database": lambda: SqlDatabase(urls["database"]).ping(),
        "counters": lambda: RedisCounters.from_url(urls["counters"]).get("ann"),
        "events": lambda: PikaEventBus(urls["events"]).publish("messages", {"id": "e1"}),
    }
    with pytest.raises(BackendError) as caught:
        use[backend]()
    # The app says what it was doing, then the doctor's sentence; both know it is a closed port.
    assert caught.value.problem == found.problem == PORT_CLOSED
    assert str(caught.value).endswith(found.message)
    assert SECRET not in str(caught.value)


def test_main_returns_one_on_a_failure_and_prints_no_secret(settings_factory, capsys) -> None:  # type: ignore[no-untyped-def]
    settings = settings_factory(redis_url=f"redis://default:{SECRET}@127.0.0.1:{free_port()}/0")
    assert doctor.main(settings, timeout=2) == 1
    printed = capsys.readouterr().out
    assert "FAILED" in printed and "REDIS_URL" in printed
    assert SECRET not in printed


# -- real local services ---------------------------------------------------------------------------------------
@pytest.mark.integration
def test_postgres_round_trip_and_wrong_user_or_database(settings_factory, pg_url: str) -> None:  # type: ignore[no-untyped-def]
    ok = doctor.check_database(settings_factory(database_url=pg_url))
    assert ok.status == OK and ok.latency_ms is not None and ok.latency_ms > 0
    assert "tables are not created yet" in ok.message

    parts = urlsplit(pg_url)
    wrong_user = urlunsplit(parts._replace(netloc=f"no_such_user_x:{SECRET}@{parts.hostname}:{parts.port}"))
    result = doctor.check_database(settings_factory(database_url=wrong_user))
    assert result.problem == AUTH and "no_such_user_x" in result.message and "DATABASE_URL" in result.message
    assert SECRET not in result.message + result.target

    wrong_db = urlunsplit(parts._replace(path="/no_such_database_x"))
    result = doctor.check_database(settings_factory(database_url=wrong_db))
    assert (
        result.problem == MISSING
        and "no_such_database_x" in result.message
        and "DATABASE_URL" in result.message
    )


@pytest.mark.integration
def test_postgres_tables_found_after_the_app_created_them(settings_factory, pg_url: str) -> None:  # type: ignore[no-untyped-def]
    from daca_kit.adapters.sql import SqlDatabase

    db = SqlDatabase(pg_url)
    db.create_all()
    db.close()
    result = doctor.check_database(settings_factory(database_url=pg_url))
    assert result.status == OK and "table 'conversation'" in result.message


@pytest.mark.integration
def test_postgres_tls_required_by_a_server_without_tls(settings_factory) -> None:  # type: ignore[no-untyped-def]
    need("PostgreSQL", PG_HOST, PG_PORT)
    url = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/postgres?sslmode=require"
    result = doctor.check_database(settings_factory(database_url=url))
    assert result.problem == TLS and "sslmode" in result.message


@pytest.mark.integration
def test_rabbitmq_round_trip_wrong_password_and_tls(settings_factory, amqp_url: str) -> None:  # type: ignore[no-untyped-def]
    ok = doctor.check_events(settings_factory(amqp_url=amqp_url))
    assert ok.status == OK and ok.latency_ms is not None

    parts = urlsplit(amqp_url)
    wrong = urlunsplit(parts._replace(netloc=f"guest:{SECRET}@{AMQP_HOST}:{AMQP_PORT}"))
    result = doctor.check_events(settings_factory(amqp_url=wrong))
    assert result.status == FAILED and result.problem == AUTH and "AMQP_URL" in result.message
    assert SECRET not in result.message + result.target

    missing_vhost = urlunsplit(parts._replace(path="/no-such-vhost-x"))
    result = doctor.check_events(settings_factory(amqp_url=missing_vhost))
    assert result.problem == MISSING and "no-such-vhost-x" in result.message

    tls_to_plain = urlunsplit(parts._replace(scheme="amqps"))  # TLS spoken to the plain AMQP port
    result = doctor.check_events(settings_factory(amqp_url=tls_to_plain))
    assert result.problem == TLS and "amqps://" in result.message


@pytest.mark.integration
def test_redis_round_trip(settings_factory, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    result = doctor.check_counters(settings_factory(redis_url=redis_url))
    assert result.status == OK and result.setting == "REDIS_URL" and result.latency_ms is not None


# -- Gemini, on the local stub ---------------------------------------------------------------------------------
def test_gemini_key_and_model_are_checked(settings_factory) -> None:  # type: ignore[no-untyped-def]
    key = "AIza-doctor-test-key-0123456789"
    with GeminiStub(api_key=key, models={"gemini-test-model"}) as stub:
        settings = settings_factory(
            gemini_api_key=key, gemini_model="gemini-test-model", gemini_base_url=stub.base_url
        )
        ok = doctor.check_model(settings)
        assert ok.status == OK and ok.latency_ms is not None, ok

        gone = doctor.check_model(
            settings_factory(gemini_api_key=key, gemini_model="retired-model", gemini_base_url=stub.base_url)
        )
        assert gone.problem == MISSING and gone.setting == "GEMINI_MODEL" and "GEMINI_MODEL" in gone.message

        wrong = doctor.check_model(
            settings_factory(
                gemini_api_key="AIza-wrong-key-0000",
                gemini_model="gemini-test-model",
                gemini_base_url=stub.base_url,
            )
        )
        assert wrong.problem == AUTH and "GEMINI_API_KEY" in wrong.message
        for result in (ok, gone, wrong):
            assert key not in result.message + result.target and "AIza-wrong-key-0000" not in result.message


# -- outbound ports and fallbacks ------------------------------------------------------------------------------
def test_outbound_ports_on_loopback(listening_port: int) -> None:
    closed = free_port()
    results = doctor.outbound_ports(
        [PortTarget("127.0.0.1", listening_port, "test", ""), ("127.0.0.1", closed)], timeout=1
    )
    assert [(r.port, r.open) for r in results] == [(listening_port, True), (closed, False)]
    assert results[1].detail == "refused"
    text = doctor.format_ports(results)
    assert f"127.0.0.1:{listening_port}" in text and "CLOSED (refused)" in text


def test_port_targets_come_from_the_configured_urls(settings_factory) -> None:  # type: ignore[no-untyped-def]
    settings = settings_factory(
        database_url=f"cockroachdb://u:{SECRET}@db.example.invalid/defaultdb",
        redis_url=f"rediss://default:{SECRET}@cache.example.invalid:6379",
        amqp_url=f"amqps://u:{SECRET}@mq.example.invalid/u",
    )
    targets = doctor.port_targets(settings)
    assert [(t.host, t.port, t.setting) for t in targets] == [
        ("db.example.invalid", 26257, "DATABASE_URL"),
        ("cache.example.invalid", 6379, "REDIS_URL"),
        ("mq.example.invalid", 5671, "AMQP_URL"),
    ]
    assert doctor.port_targets(settings_factory()) == []


def test_fallbacks_for_closed_ports(settings_factory) -> None:  # type: ignore[no-untyped-def]
    def port(number: int, setting: str, is_open: bool) -> PortCheck:
        return PortCheck("host.invalid", number, "", setting, is_open, "open" if is_open else "timed out")

    ports = [
        port(443, "", True),
        port(6379, "REDIS_URL", False),
        port(5671, "AMQP_URL", False),
        port(26257, "DATABASE_URL", False),
    ]
    notes = doctor.fallbacks(ports, settings_factory())
    assert any("UPSTASH_REDIS_REST_URL" in n and "unset REDIS_URL" in n for n in notes)
    assert any("unset AMQP_URL" in n and "in-process" in n for n in notes)
    assert any("Postgres reachable on a port this host may open (443, or 5432" in n for n in notes)

    with_rest = settings_factory(
        upstash_redis_rest_url="https://x.upstash.io", upstash_redis_rest_token="tok-123456"
    )
    notes = doctor.fallbacks([port(6379, "REDIS_URL", False)], with_rest)
    assert notes and "already uses Upstash's REST API" in notes[0]
    assert doctor.fallbacks([port(443, "", True)], settings_factory()) == []


def test_unreachable_default_gemini_host_names_the_setting_that_helps(settings_factory, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # The default host stands in for one this machine cannot resolve (no test reaches the internet).
    from daca_kit.adapters import gemini_errors

    monkeypatch.setattr(gemini_errors, "GEMINI_HOST", "gemini-api.invalid")
    result = doctor.check_model(settings_factory(gemini_api_key="k-123456"), timeout=1)
    assert result.failed and result.setting == "GEMINI_BASE_URL"
    assert "GEMINI_BASE_URL" in result.message and "offline model" in result.message
    assert "in GEMINI_API_KEY" not in result.message and "k-123456" not in result.message
