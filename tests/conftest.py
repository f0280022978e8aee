"""Shared fixtures.

Services: `pg_url` (a fresh Postgres database per test), `redis_url` (a Redis database index private to
this test session, flushed per test), `amqp_url` (a RabbitMQ vhost private to this session) and
`amqp_user` (a temporary RabbitMQ user on it). A test that needs a service it cannot reach, or a vhost or
user that rabbitmqctl cannot make, is skipped with the reason, or fails when DACA_REQUIRE_SERVICES=1 (CI):
no fixture falls back to something shared, and none makes a test vanish in CI.
"""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import quote

import pytest

from daca_kit.settings import Settings

if TYPE_CHECKING:
    from tests.support.appproc import AppProcess

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
PG_HOST, PG_PORT = (
    os.environ.get("DACA_TEST_PG_HOST", "127.0.0.1"),
    int(os.environ.get("DACA_TEST_PG_PORT", "5432")),
)
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
AMQP_HOST, AMQP_PORT = "127.0.0.1", 5672
AMQP_USER_PASSWORD = "mqpw-SECRET-8a2f19"  # `amqp_user`'s; the secret scans look for it in every output


def reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def unavailable(reason: str) -> NoReturn:
    """Skips the test with `reason`; under DACA_REQUIRE_SERVICES=1 (CI) fails it, so no test vanishes."""
    if os.environ.get("DACA_REQUIRE_SERVICES") == "1":
        pytest.fail(reason + " and DACA_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(reason)


def need(service: str, host: str, port: int) -> None:
    if not reachable(host, port):
        unavailable(f"{service} is not reachable at {host}:{port}")


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
@contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty Postgres database, dropped on leaving the block (for fixtures of any scope)."""
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


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A new, empty Postgres database for one test, dropped afterwards."""
    with fresh_database() as url:
        yield url


# -- Redis --------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def _redis_db(worker_id: str, testrun_uid: str) -> int:
    """DACA_TEST_REDIS_DB (else one drawn from the run's id), plus the xdist worker's number: each worker its
    own database. The base is the run's, not each worker's own draw: two workers drawing theirs could land
    on one database and empty each other's counters mid-test (1 run in 15)."""
    base = int(os.environ.get("DACA_TEST_REDIS_DB") or 1 + int(testrun_uid[:8], 16) % 15)
    worker = int(worker_id[2:]) if worker_id.startswith("gw") else 0
    return 1 + (base - 1 + worker) % 15


def flushed_redis(db: int) -> str:
    """The URL of Redis database `db`, emptied (for fixtures of any scope)."""
    need("Redis", REDIS_HOST, REDIS_PORT)
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db)
    client.flushdb()
    client.close()
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/{db}"


@pytest.fixture
def redis_url(_redis_db: int) -> str:
    """A Redis URL on a database index private to this session, flushed before the test."""
    return flushed_redis(_redis_db)


# -- RabbitMQ -----------------------------------------------------------------------------------
def rabbitmqctl(*args: str) -> str | None:
    """Runs `rabbitmqctl -q ARGS`; None when it worked, else why not (its last line of error)."""
    try:
        done = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{type(exc).__name__}: {exc}"
    if done.returncode == 0:
        return None
    lines = (done.stderr or done.stdout).strip().splitlines()
    return lines[-1] if lines else f"exit code {done.returncode}"


@pytest.fixture(scope="session")
def _amqp_vhost() -> Iterator[str]:
    """A RabbitMQ vhost private to this session (never the shared `/`), made with rabbitmqctl."""
    with private_vhost() as vhost:
        yield vhost


@contextmanager
def private_vhost() -> Iterator[str]:
    """A new RabbitMQ vhost that guest may use, deleted afterwards (skips, or fails in CI, without one)."""
    need("RabbitMQ", AMQP_HOST, AMQP_PORT)
    vhost = f"daca-test-{uuid.uuid4().hex[:8]}"
    failed = rabbitmqctl("add_vhost", vhost)
    if failed:
        unavailable(f"rabbitmqctl could not add the test vhost ({failed})")
    failed = rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    if failed:
        rabbitmqctl("delete_vhost", vhost)
        unavailable(f"rabbitmqctl could not give guest the test vhost ({failed})")
    try:
        yield vhost
    finally:
        rabbitmqctl("delete_vhost", vhost)


@pytest.fixture
def amqp_url(_amqp_vhost: str) -> str:
    """An AMQP URL on a vhost private to this test session."""
    return f"amqp://guest:guest@{AMQP_HOST}:{AMQP_PORT}/{quote(_amqp_vhost, safe='')}"


@pytest.fixture(scope="module")
def amqp_user(_amqp_vhost: str) -> Iterator[str]:
    """An AMQP URL with a temporary user (password AMQP_USER_PASSWORD) on the test vhost, one per module."""
    name = f"daca-sec-{uuid.uuid4().hex[:8]}"
    failed = rabbitmqctl("add_user", name, AMQP_USER_PASSWORD)
    if failed:
        unavailable(f"rabbitmqctl could not add a user ({failed})")
    try:
        failed = rabbitmqctl("set_permissions", "-p", _amqp_vhost, name, ".*", ".*", ".*")
        if failed:
            unavailable(f"rabbitmqctl could not give a user the test vhost ({failed})")
        yield f"amqp://{name}:{AMQP_USER_PASSWORD}@{AMQP_HOST}:{AMQP_PORT}/{quote(_amqp_vhost, safe='')}"
    finally:
        rabbitmqctl("delete_user", name)


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


# -- the app with two workers -------------------------------------------------------------------
@pytest.fixture
def workers(tmp_path: Path, pg_url: str, redis_url: str) -> Iterator[AppProcess]:
    """`python app.py` with WEB_CONCURRENCY=2 on Postgres and Redis, the UI on worker 0."""
    from tests.support.appproc import AppProcess

    env = {"DATABASE_URL": pg_url, "REDIS_URL": redis_url, "WEB_CONCURRENCY": "2"}
    with AppProcess(tmp_path, env=env, ui=True, startup_timeout=90) as app:
        app.start()
        yield app
