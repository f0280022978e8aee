"""Shared fixtures.

Services: `pg_url` (a fresh Postgres database per test), `redis_url` (a Redis database index private to
this test session, flushed per test), `amqp_url` (a RabbitMQ vhost private to this session). A test that
needs a service it cannot reach is skipped with the reason, or fails when DACA_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from daca_kit.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
PG_HOST, PG_PORT = (
    os.environ.get("DACA_TEST_PG_HOST", "127.0.0.1"),
    int(os.environ.get("DACA_TEST_PG_PORT", "5432")),
)
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
AMQP_HOST, AMQP_PORT = "127.0.0.1", 5672


def reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def need(service: str, host: str, port: int) -> None:
    if reachable(host, port):
        return
    reason = f"{service} is not reachable at {host}:{port}"
    if os.environ.get("DACA_REQUIRE_SERVICES") == "1":
        pytest.fail(reason + " and DACA_REQUIRE_SERVICES=1")
    pytest.skip(reason)


@pytest.fixture
def settings_factory(tmp_path: Path):
    """Settings on a fresh SQLite file, ignoring the developer's environment and .env."""

    def make(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "database_url": f"sqlite:///{tmp_path / 'daca.db'}",
            "rate_limit": "1000/second",
            "client_rate_limit": "1000/second",  # TestClient's one address is every test's visitor
            "max_pending_per_client": 1000,
            "reviewer_password": "test-reviewer-pw",
            "admin_token": "test-admin-token",
            "redis_url": None,
            "amqp_url": None,
            "gemini_api_key": None,
            "upstash_redis_rest_url": None,
            "upstash_redis_rest_token": None,
            "chat_wait": 5,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return make


# -- Postgres -----------------------------------------------------------------------------------
@pytest.fixture
def pg_url() -> Iterator[str]:
    """A new, empty Postgres database for one test, dropped afterwards."""
    need("PostgreSQL", PG_HOST, PG_PORT)
    import psycopg

    name = f"daca_test_{uuid.uuid4().hex[:12]}"
    admin = f"host={PG_HOST} port={PG_PORT} user=postgres dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- Redis --------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def _redis_db() -> int:
    return int(os.environ.get("DACA_TEST_REDIS_DB", random.randint(1, 15)))


@pytest.fixture
def redis_url(_redis_db: int) -> str:
    """A Redis URL on a database index private to this session, flushed before the test."""
    need("Redis", REDIS_HOST, REDIS_PORT)
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=_redis_db)
    client.flushdb()
    client.close()
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/{_redis_db}"


# -- RabbitMQ -----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def _amqp_vhost() -> Iterator[str]:
    if not reachable(AMQP_HOST, AMQP_PORT):
        yield ""
        return
    vhost = f"daca-test-{uuid.uuid4().hex[:8]}"
    ok = subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], capture_output=True).returncode == 0
    if ok:
        subprocess.run(
            ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
            capture_output=True,
        )
    yield vhost if ok else "/"
    if ok:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True)


@pytest.fixture
def amqp_url(_amqp_vhost: str) -> str:
    """An AMQP URL on a vhost private to this test session."""
    need("RabbitMQ", AMQP_HOST, AMQP_PORT)
    from urllib.parse import quote

    return f"amqp://guest:guest@{AMQP_HOST}:{AMQP_PORT}/{quote(_amqp_vhost, safe='')}"


def purge_queues(url: str) -> None:
    """Deletes the kit's queues on the vhost of `url` so a test starts with none pending."""
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(url))
    channel = conn.channel()
    for queue in ("daca-analytics-messages",):
        channel.queue_delete(queue=queue)
    conn.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
