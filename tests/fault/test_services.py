"""Faults in the services the app depends on, injected through TCP proxies the tests control:
RabbitMQ cut mid-load and restored, Redis cut. The machine's services themselves are never touched."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from tests.conftest import purge_queues
from tests.support.appproc import AppProcess, eventually
from tests.support.tcpproxy import TcpProxy

pytestmark = pytest.mark.integration


@pytest.fixture
def broker_proxy() -> Iterator[TcpProxy]:
    with TcpProxy("127.0.0.1", 5672) as proxy:
        yield proxy


@pytest.fixture
def redis_proxy() -> Iterator[TcpProxy]:
    with TcpProxy("127.0.0.1", 6379) as proxy:
        yield proxy


def outbox_size(pg_url: str) -> int:
    with psycopg.connect(pg_url) as conn:
        return int(conn.execute("SELECT count(*) FROM outbox").fetchone()[0])  # type: ignore[index]


@pytest.mark.slow  # an app process, 60 turns and a broker outage
def test_rabbitmq_cut_mid_load_loses_nothing_and_counts_nothing_twice(
    tmp_path: Path, pg_url: str, redis_url: str, amqp_url: str, broker_proxy: TcpProxy
) -> None:
    purge_queues(amqp_url)
    users, per_user = [f"load{i}" for i in range(4)], 15
    env = {"DATABASE_URL": pg_url, "REDIS_URL": redis_url, "AMQP_URL": broker_proxy.wrap_url(amqp_url)}
    statuses: list[int] = []
    ids: list[str] = []
    lock = threading.Lock()
    done = threading.Semaphore(0)

    def user_load(app: AppProcess, user: str) -> None:
        with app.client() as client:
            for i in range(per_user):
                response = client.post("/chat/", json={"user_id": user, "text": f"message {i}"})
                with lock:
                    statuses.append(response.status_code)
                    if response.status_code == 200:
                        ids.append(response.json()["metadata"]["instance_id"])
                done.release()
                time.sleep(0.03)  # spread the load over the outage

    with AppProcess(tmp_path, env=env) as app:
        threads = [threading.Thread(target=user_load, args=(app, u)) for u in users]
        for t in threads:
            t.start()
        for _ in range(12):  # a few turns go through first
            assert done.acquire(timeout=30)
        broker_proxy.cut()
        time.sleep(1.0)  # the load goes on against a dead broker
        assert outbox_size(pg_url) > 0  # the outbox holds what could not be published
        broker_proxy.restore()
        for t in threads:
            t.join(timeout=60)

        assert statuses == [200] * (len(users) * per_user)
        store = redis.Redis.from_url(redis_url, decode_responses=True)
        counts = lambda: [int(store.get(f"message_count:{u}") or 0) for u in users]  # noqa: E731
        eventually(lambda: counts() == [per_user] * len(users), timeout=30)
        eventually(lambda: outbox_size(pg_url) == 0)
        time.sleep(0.5)  # a late redelivery would show up here
        assert counts() == [per_user] * len(users)
        assert all(store.exists(f"message_counted:{i}:MessageSent") for i in ids)
        assert len(set(ids)) == len(users) * per_user
        with app.client() as client:
            assert [client.get(f"/analytics/{u}").json()["message_count"] for u in users] == counts()
        store.close()
    assert broker_proxy.dropped > 0  # the cut did drop live connections


def test_redis_cut_chat_answers_and_the_count_shows_unavailable(
    tmp_path: Path, redis_url: str, redis_proxy: TcpProxy
) -> None:
    env = {"REDIS_URL": redis_proxy.wrap_url(redis_url)}
    with AppProcess(tmp_path, env=env) as app, app.client() as client:
        assert client.post("/chat/", json={"user_id": "dora", "text": "hello"}).status_code == 200
        eventually(lambda: client.get("/analytics/dora").json()["message_count"] == 1)

        redis_proxy.cut()
        started = time.monotonic()
        turn = client.post("/chat/", json={"user_id": "dora", "text": "are you there?"})
        turn_seconds = time.monotonic() - started
        assert turn.status_code == 200, turn.text
        assert turn_seconds < 2.0  # a refused Redis fails fast: no retry backoff in the request path
        assert "unavailable" in turn.json()["reply"]  # the offline model says the count is unknown
        count = client.get("/analytics/dora")
        assert count.status_code == 200
        assert count.json()["message_count"] is None
        assert count.json()["available"] is False
        assert "REDIS_URL" in count.json()["detail"]
        for path in ("/health", "/usage", "/conversations/dora"):
            assert client.get(path).status_code < 500, path
        # An admin write cannot succeed without Redis: it says so (503 with a sentence), nothing half-done.
        init = client.post("/analytics/dora/initialize", json={"message_count": 3}, headers=app.admin_headers)
        assert init.status_code == 503
        assert "REDIS_URL" in init.json()["detail"]

        redis_proxy.restore()
        # The MessageSent event of the turn made during the cut is counted once Redis is back.
        eventually(lambda: client.get("/analytics/dora").json()["message_count"] == 2, timeout=45)
