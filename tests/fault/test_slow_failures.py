"""Slow failures: Postgres, Redis, RabbitMQ, Upstash REST and Gemini each cut three ways while the real app
runs as a child process: connections refused, blackholed (accepted, never answered) and reset mid-request
(tests/support/tcpproxy.py). Traffic stays on loopback; the real services are never touched.

Must hold for every backend and cut: a chat turn answers within the bound (BOUND seconds for the data
services, GEMINI_TIMEOUT for the model) with a reply, or with a 503 that names the backend's setting;
nothing is half-stored; and once the service is back the app recovers by itself. A service that is down
degrades its one feature: counters down still answers chats, a broker down keeps events in the outbox, the
database down is a 503. One app per backend serves its three cuts. What each case measured goes to
test-artifacts/fault-bounds.md.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis

from tests.conftest import (
    AMQP_PORT,
    ARTIFACTS,
    PG_HOST,
    PG_PORT,
    REDIS_PORT,
    flushed_redis,
    fresh_database,
    purge_queues,
)
from tests.support.appproc import AppProcess, eventually
from tests.support.faults import BOUNDS, Turn, recovery, timed_chat
from tests.support.gemini_stub import GeminiStub
from tests.support.tcpproxy import MODES, Mode, TcpProxy
from tests.support.upstash_stub import UpstashRestStub

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

BOUND = 5.0  # seconds: the longest a chat turn may take while a data service is cut
GEMINI_TIMEOUT = 3.0  # the model's own timeout in these tests (GEMINI_TIMEOUT)
KEY, MODEL, UPSTASH_TOKEN = "AIzaSy-slow-failures-0f3c", "gemini-test-flash", "upstash-slow-token"


@dataclass
class Served:
    """The app with one service behind `proxy`, a client on it, and where to look behind the app's back."""

    app: AppProcess
    proxy: TcpProxy
    client: httpx.Client
    redis: redis.Redis | None = None
    pg_url: str = ""

    def sqlite(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        path = self.app.database_url.removeprefix("sqlite:///")
        with sqlite3.connect(path, timeout=10) as db:
            return db.execute(query, args).fetchall()

    def postgres(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.pg_url) as conn:
            return conn.execute(query, args).fetchall()

    def count(self, user_id: str) -> int:
        assert self.redis is not None
        return int(self.redis.get(f"message_count:{user_id}") or 0)


@pytest.fixture(scope="module", autouse=True)
def _bounds_table() -> Iterator[None]:
    yield
    BOUNDS.write(ARTIFACTS / "fault-bounds.md")


@pytest.fixture(scope="module")
def _redis_module(_redis_db: int) -> Iterator[redis.Redis]:
    store = redis.Redis.from_url(flushed_redis(_redis_db), decode_responses=True)
    yield store
    store.close()


def serve(tmp: Path, proxy: TcpProxy, env: dict[str, str | None], **kwargs: Any) -> Iterator[Served]:
    with proxy, AppProcess(tmp, env=env) as app, app.client(timeout=30.0) as client:
        yield Served(app, proxy, client, **kwargs)


def ok(turn: Turn) -> bool:
    return turn.status == 200


def stored_ids(served: Served, user_id: str) -> list[str]:
    query = "SELECT instance_id FROM conversation WHERE user_id = {} ORDER BY instance_id"
    if served.pg_url:
        return [r[0] for r in served.postgres(query.format("%s"), user_id)]
    return [r[0] for r in served.sqlite(query.format("?"), user_id)]


def outbox_size(served: Served) -> int:
    rows = (
        served.postgres("SELECT count(*) FROM outbox")
        if served.pg_url
        else served.sqlite("SELECT count(*) FROM outbox")
    )
    return int(rows[0][0])


def analytics(served: Served, user_id: str) -> dict[str, Any]:
    return dict(served.client.get(f"/analytics/{user_id}").json())


# -- the database ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Postgres behind the proxy; counters in the same database (as on a Space with no Redis)."""
    with fresh_database() as url:
        proxy = TcpProxy(PG_HOST, PG_PORT)
        yield from serve(
            tmp_path_factory.mktemp("pg"), proxy, {"DATABASE_URL": proxy.wrap_url(url)}, pg_url=url
        )


@pytest.mark.parametrize("mode", MODES)
def test_postgres_cut_is_a_503_within_the_bound_and_heals(pg: Served, mode: Mode) -> None:
    user = f"pg-{mode}"
    before = timed_chat(pg.client, user, "before the cut")
    assert ok(before), before.describe()  # the pool now holds live connections: a cut catches them
    answered = [before.instance_id]

    pg.proxy.cut(mode)
    try:
        for text in ("during the cut", "still down?"):
            turn = timed_chat(pg.client, user, text)
            BOUNDS.answered("postgres", mode, turn)
            assert turn.response is not None, f"POST /chat/ did not answer within {turn.seconds:.1f} s"
            assert turn.status == 503, turn.describe()
            assert "DATABASE_URL" in turn.detail, turn.detail
            assert turn.seconds < BOUND, f"the 503 took {turn.seconds:.1f} s"
        start = time.monotonic()
        health = pg.client.get("/health")
        assert time.monotonic() - start < BOUND
        assert health.status_code < 500
    finally:
        pg.proxy.restore()

    def healed() -> bool:
        turn = timed_chat(pg.client, user, "back again?")
        answered.append(turn.instance_id)
        return ok(turn)

    BOUNDS.get("postgres", mode).recovery = recovery(healed)
    # Nothing half-stored: exactly the turns that answered 200 are stored, each counted once.
    stored = [i for i in answered if i]
    assert stored_ids(pg, user) == sorted(stored)
    eventually(lambda: analytics(pg, user)["message_count"] == len(stored), timeout=30)
    eventually(lambda: outbox_size(pg) == 0)
    running = pg.postgres("SELECT count(*) FROM workflow_instance WHERE runtime_status = 'RUNNING'")
    assert running == [(0,)]


@pytest.mark.slow  # four users chatting through a database outage
@pytest.mark.parametrize("mode", MODES)
def test_postgres_cut_mid_load_answers_every_turn_in_time_and_stores_no_half_turn(
    pg: Served, mode: Mode
) -> None:
    users = [f"load-{mode}-{i}" for i in range(4)]
    turns: dict[str, list[Turn]] = {u: [] for u in users}
    stop = threading.Event()

    def chat(user: str) -> None:
        with pg.app.client(timeout=30.0) as client:
            n = 0
            while not stop.is_set():
                turns[user].append(timed_chat(client, user, f"message {n}"))
                n += 1
                time.sleep(0.02)

    threads = [threading.Thread(target=chat, args=(u,)) for u in users]
    for t in threads:
        t.start()
    try:
        eventually(lambda: all(sum(map(ok, turns[u])) >= 3 for u in users), timeout=30)
        pg.proxy.cut(mode)
        time.sleep(BOUND + 1.0)  # the load goes on against a dead database, longer than a turn may take
    finally:
        pg.proxy.restore()
    restored = {u: len(turns[u]) for u in users}
    start = time.monotonic()
    # Recovered once every user has had three answered turns since the database came back.
    eventually(lambda: all(sum(map(ok, turns[u][restored[u] :])) >= 3 for u in users), timeout=45)
    BOUNDS.get("postgres mid-load", mode).recovery = time.monotonic() - start
    stop.set()
    for t in threads:
        t.join(timeout=30)

    every = [turn for u in users for turn in turns[u]]
    for turn in every:
        BOUNDS.answered("postgres mid-load", mode, turn)
    assert all(t.response is not None for t in every), "a turn got no answer"
    slowest = max(every, key=lambda t: t.seconds)
    assert slowest.seconds < BOUND, f"a turn took {slowest.seconds:.1f} s ({slowest.describe()})"
    assert {t.status for t in every} <= {200, 503}
    assert all("DATABASE_URL" in t.detail for t in every if t.status == 503)
    assert any(t.status == 503 for t in every), "the cut refused no turn: it did not bite"
    for user in users:
        answered = {t.instance_id for t in turns[user] if t.instance_id}
        stored = stored_ids(pg, user)
        assert len(stored) == len(set(stored))
        # Every answered turn is stored; a turn whose COMMIT got through as the connection died may be
        # stored though its client saw a 503 (it cannot know): stored whole, and counted once.
        assert answered <= set(stored)
        count = len(stored)
        eventually(lambda u=user, n=count: analytics(pg, u)["message_count"] == n, timeout=30)
    eventually(lambda: outbox_size(pg) == 0)


# -- the counters: Redis, and Upstash's REST API ----------------------------------------------------
@pytest.fixture(scope="module")
def redis_app(tmp_path_factory: pytest.TempPathFactory, _redis_module: redis.Redis) -> Iterator[Served]:
    proxy = TcpProxy("127.0.0.1", REDIS_PORT)
    db = _redis_module.connection_pool.connection_kwargs["db"]
    env = {"REDIS_URL": proxy.wrap_url(f"redis://127.0.0.1:{REDIS_PORT}/{db}")}
    yield from serve(tmp_path_factory.mktemp("redis"), proxy, env, redis=_redis_module)


@pytest.fixture(scope="module")
def rabbitmq_redis_app(
    tmp_path_factory: pytest.TempPathFactory, _redis_module: redis.Redis
) -> Iterator[Served]:
    """Redis behind the proxy, events on the real RabbitMQ (a vhost of its own: no other app consumes its
    queue): the consumer counts what arrived together in one call, and a failed batch is delivered again."""
    from urllib.parse import quote

    from tests.conftest import private_vhost

    proxy = TcpProxy("127.0.0.1", REDIS_PORT)
    db = _redis_module.connection_pool.connection_kwargs["db"]
    with private_vhost() as vhost:
        env = {
            "REDIS_URL": proxy.wrap_url(f"redis://127.0.0.1:{REDIS_PORT}/{db}"),
            "AMQP_URL": f"amqp://guest:guest@127.0.0.1:{AMQP_PORT}/{quote(vhost, safe='')}",
        }
        yield from serve(tmp_path_factory.mktemp("rabbitmq-redis"), proxy, env, redis=_redis_module)


@pytest.fixture(scope="module")
def upstash_app(tmp_path_factory: pytest.TempPathFactory, _redis_module: redis.Redis) -> Iterator[Served]:
    db = _redis_module.connection_pool.connection_kwargs["db"]
    with UpstashRestStub(f"redis://127.0.0.1:{REDIS_PORT}/{db}", token=UPSTASH_TOKEN) as stub:
        port = int(stub.url.rsplit(":", 1)[1])
        proxy = TcpProxy("127.0.0.1", port)
        env = {"UPSTASH_REDIS_REST_URL": proxy.url, "UPSTASH_REDIS_REST_TOKEN": UPSTASH_TOKEN}
        yield from serve(tmp_path_factory.mktemp("upstash"), proxy, env, redis=_redis_module)


@pytest.mark.parametrize("backend", ["redis", "upstash", "rabbitmq_redis"])
@pytest.mark.parametrize("mode", MODES)
def test_counters_cut_chat_still_answers_within_the_bound_and_counts_catch_up(
    request: pytest.FixtureRequest, backend: str, mode: Mode
) -> None:
    served: Served = request.getfixturevalue(f"{backend}_app")
    setting = "UPSTASH_REDIS_REST_URL" if backend == "upstash" else "REDIS_URL"
    user = f"{backend}-{mode}"
    assert ok(timed_chat(served.client, user, "before the cut"))
    eventually(lambda: served.count(user) == 1)

    served.proxy.cut(mode)
    try:
        for text in ("during the cut", "still down?"):
            turn = timed_chat(served.client, user, text)
            BOUNDS.answered(backend, mode, turn)
            assert turn.response is not None, f"POST /chat/ did not answer within {turn.seconds:.1f} s"
            assert turn.status == 200, turn.describe()  # the counters are down, the chat is not
            assert "unavailable" in turn.detail, turn.detail  # the reply says the count is unknown
            assert turn.seconds < BOUND, f"the turn took {turn.seconds:.1f} s"
        start = time.monotonic()
        count = analytics(served, user)
        assert time.monotonic() - start < BOUND
        assert count["available"] is False and setting in count["detail"], count
        assert served.count(user) == 1  # nothing reached the counters during the cut
    finally:
        served.proxy.restore()

    # The events of the turns made during the cut are counted once the counters are back, once each.
    BOUNDS.get(backend, mode).recovery = recovery(lambda: analytics(served, user).get("message_count") == 3)
    time.sleep(0.5)  # a late redelivery would show up here
    assert served.count(user) == 3
    assert len(stored_ids(served, user)) == 3


# -- the broker ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def broker(
    tmp_path_factory: pytest.TempPathFactory, _redis_module: redis.Redis, _amqp_vhost: str
) -> Iterator[Served]:
    from urllib.parse import quote

    from tests.conftest import need

    need("RabbitMQ", "127.0.0.1", AMQP_PORT)
    amqp = f"amqp://guest:guest@127.0.0.1:{AMQP_PORT}/{quote(_amqp_vhost, safe='')}"
    purge_queues(amqp)
    proxy = TcpProxy("127.0.0.1", AMQP_PORT)
    db = _redis_module.connection_pool.connection_kwargs["db"]
    env = {"AMQP_URL": proxy.wrap_url(amqp), "REDIS_URL": f"redis://127.0.0.1:{REDIS_PORT}/{db}"}
    yield from serve(tmp_path_factory.mktemp("amqp"), proxy, env, redis=_redis_module)


@pytest.mark.parametrize("mode", MODES)
def test_broker_cut_chat_answers_events_wait_in_the_outbox_and_are_counted_once(
    broker: Served, mode: Mode
) -> None:
    user = f"amqp-{mode}"
    assert ok(timed_chat(broker.client, user, "before the cut"))
    eventually(lambda: broker.count(user) == 1, timeout=30)

    broker.proxy.cut(mode)
    try:
        for n in range(3):
            turn = timed_chat(broker.client, user, f"during the cut {n}")
            BOUNDS.answered("rabbitmq", mode, turn)
            assert turn.status == 200, turn.describe()
            assert turn.seconds < BOUND, f"the turn took {turn.seconds:.1f} s"
        eventually(lambda: outbox_size(broker) >= 3)  # the events wait in the outbox
        time.sleep(0.5)
        assert broker.count(user) == 1
    finally:
        broker.proxy.restore()

    BOUNDS.get("rabbitmq", mode).recovery = recovery(lambda: broker.count(user) == 4, timeout=60)
    eventually(lambda: outbox_size(broker) == 0)
    time.sleep(0.5)  # a late redelivery would show up here
    assert broker.count(user) == 4


# -- the model -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gemini(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with GeminiStub(api_key=KEY, models={MODEL}) as stub:
        port = int(stub.base_url.rstrip("/").rsplit(":", 1)[1])
        proxy = TcpProxy("127.0.0.1", port)
        env = {
            "GEMINI_API_KEY": KEY,
            "GEMINI_MODEL": MODEL,
            "GEMINI_BASE_URL": proxy.url,
            "GEMINI_TIMEOUT": str(GEMINI_TIMEOUT),
        }
        yield from serve(tmp_path_factory.mktemp("gemini"), proxy, env)


@pytest.mark.parametrize("mode", MODES)
def test_gemini_cut_is_a_503_within_its_timeout_and_heals(gemini: Served, mode: Mode) -> None:
    user = f"gemini-{mode}"
    first = timed_chat(gemini.client, user, "before the cut")
    assert ok(first) and "stub reply to: before the cut" in first.detail, first.describe()

    gemini.proxy.cut(mode)
    try:
        turn = timed_chat(gemini.client, user, "during the cut")
        BOUNDS.answered("gemini", mode, turn)
        assert turn.response is not None, f"POST /chat/ did not answer within {turn.seconds:.1f} s"
        assert turn.status == 503, turn.describe()
        assert "Gemini" in turn.detail, turn.detail
        assert turn.seconds < GEMINI_TIMEOUT + 1.0, f"the 503 took {turn.seconds:.1f} s"
        failed = turn.response.json()["instance_id"]
        assert gemini.client.get(f"/chat/{failed}").json()["status"] == "failed"
    finally:
        gemini.proxy.restore()

    BOUNDS.get("gemini", mode).recovery = recovery(lambda: ok(timed_chat(gemini.client, user, "back?")))
    assert failed not in stored_ids(gemini, user)  # a failed turn stores nothing
    assert len(stored_ids(gemini, user)) == 2
