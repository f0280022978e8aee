"""Two app processes on one Postgres, Redis and RabbitMQ (two workers or two replicas): a review decided on
one resumes the turn once, and whoever waits for it on the other learns of it at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

from daca_kit.adapters.sql import open_stores
from daca_kit.core.ports import Stores
from tests.support.appproc import AppProcess, eventually
from tests.support.tcpproxy import TcpProxy

pytestmark = pytest.mark.integration


@contextmanager
def app_pair(tmp_path: Path, env: dict[str, str]) -> Iterator[list[AppProcess]]:
    """Two app processes on the same services, with the reviewer password and admin token two workers share."""
    first = AppProcess(tmp_path / "a", env=env)
    second = AppProcess(
        tmp_path / "b",
        env={**env, "DACA_REVIEWER_PASSWORD": first.reviewer_password, "DACA_ADMIN_TOKEN": first.admin_token},
    )
    with first, second:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda app: app.start(), (first, second)))
        yield [first, second]


@pytest.fixture
def services(pg_url: str, redis_url: str, amqp_url: str) -> dict[str, str]:
    return {"DATABASE_URL": pg_url, "REDIS_URL": redis_url, "AMQP_URL": amqp_url}


@pytest.fixture
def two_apps(tmp_path: Path, services: dict[str, str]) -> Iterator[list[AppProcess]]:
    with app_pair(tmp_path, services) as apps:
        yield apps


def _published(app: AppProcess) -> int:
    with app.client() as client:
        usage = client.get("/usage", headers=app.admin_headers).json()
    return next(int(s["calls"]) for s in usage["services"] if s["service"] == "events")


def _pending(app: AppProcess, user: str, text: str) -> str:
    with app.client() as client:
        sent = client.post("/chat/?wait=0", json={"user_id": user, "text": text})
    assert sent.status_code == 202, sent.text
    return str(sent.json()["instance_id"])


def _decide_when_pending(app: AppProcess, text: str) -> float:
    """Approves the pending review of `text` on `app` as soon as it shows; returns when (monotonic)."""
    with app.client() as client:

        def pending() -> str | None:
            rows = client.get("/reviews", auth=app.reviewer_auth).json()
            return next((r["instance_id"] for r in rows if r["message"] == text), None)

        instance_id = eventually(pending, timeout=10)
        time.sleep(0.2)  # the other process is waiting by now
        decided_at = time.monotonic()
        decided = client.post(f"/reviews/{instance_id}", json={"approved": True}, auth=app.reviewer_auth)
        assert decided.status_code == 200, decided.text
        return decided_at


@pytest.mark.slow  # two app starts
def test_a_decision_on_one_process_answers_a_wait_on_the_other_within_a_second(
    two_apps: list[AppProcess], redis_url: str
) -> None:
    a, b = two_apps
    with a.client(timeout=30) as ca, b.client() as cb, ThreadPoolExecutor(1) as pool:
        for n in range(3):
            text = f"urgent: case {n}"
            deciding = pool.submit(_decide_when_pending, b, text)
            answer = ca.post("/chat/?wait=20", json={"user_id": "carol", "text": text})
            answered_at = time.monotonic()
            assert answer.status_code == 200, answer.text
            assert answer.json()["metadata"]["status"] == "completed"
            took = answered_at - deciding.result(timeout=5)
            assert took < 1.0, f"A answered {took:.1f} s after B's decision"
        # GET /chat/{id}?wait= on A for a decision on B
        instance_id = _pending(a, "carol", "urgent: case 3")
        waiting = pool.submit(lambda: ca.get(f"/chat/{instance_id}?wait=20"))
        time.sleep(0.3)
        decided_at = time.monotonic()
        decided = cb.post(f"/reviews/{instance_id}", json={"approved": True}, auth=b.reviewer_auth)
        assert decided.status_code == 200, decided.text
        assert waiting.result(timeout=25).json()["status"] == "completed"
        took = time.monotonic() - decided_at
        assert took < 1.0, f"GET ?wait on A answered {took:.1f} s after B's decision"
        stored = cb.get("/conversations/carol", headers=b.admin_headers).json()
        assert len(stored) == 4  # each approved turn stored once
    counts = redis.Redis.from_url(redis_url)
    assert eventually(lambda: counts.get("message_count:carol") == b"4", timeout=10)
    # RabbitMQ got each event once: 4 HumanReviewRequired and 4 MessageSent, from whichever process
    assert eventually(lambda: _published(a) + _published(b) == 8, timeout=10)


def test_two_relays_on_one_outbox_publish_each_event_once(pg_url: str) -> None:
    """Two relays (two engines, as two processes have) drain one outbox: every event published once."""
    first, second = open_stores(pg_url), open_stores(pg_url)
    first.database.create_all()
    try:
        with first.database.engine.begin() as conn:  # type: ignore[attr-defined]
            first.outbox.add(conn, [("messages", f"ev-{n}", {"id": f"ev-{n}"}) for n in range(400)])  # type: ignore[attr-defined]
        published: list[str] = []
        lock = threading.Lock()

        def publish(row: dict[str, Any]) -> None:
            time.sleep(0.001)  # a broker's confirm: long enough for the relays to interleave
            with lock:
                published.append(row["event_id"])

        def drain(stores: Stores) -> int:
            total = 0
            while sent := stores.outbox.publish_batch(25, publish):
                total += sent
            return total

        with ThreadPoolExecutor(2) as pool:
            counts = list(pool.map(drain, (first, second)))
        assert sorted(published) == sorted(f"ev-{n}" for n in range(400))  # each once
        assert all(counts), counts  # both relays took part
        assert first.outbox.size() == 0
    finally:
        first.database.close()
        second.database.close()


@pytest.mark.slow  # two app starts and a review timeout
def test_a_review_timer_armed_in_both_processes_fires_once(tmp_path: Path, services: dict[str, str]) -> None:
    with app_pair(tmp_path, {**services, "DACA_REVIEW_TIMEOUT": "2s"}) as (a, b), b.client() as cb:
        ids = [_pending(app, "dave", f"urgent: late case {n}") for n, app in enumerate((a, b, a, b))]
        for instance_id in ids:
            turn = cb.get(f"/chat/{instance_id}?wait=15").json()
            assert turn["status"] == "timed_out", turn
        decided = cb.get("/reviews?status=decided", auth=b.reviewer_auth).json()
        assert {r["instance_id"]: r["status"] for r in decided} == dict.fromkeys(ids, "timed_out")
        fired = [line for app in (a, b) for line in app.output().splitlines() if "came due; resuming" in line]
        assert sorted(i for i in ids for line in fired if i in line) == sorted(ids)  # each fired once, in one
        assert _published(a) + _published(b) == 4  # one HumanReviewRequired each, and no MessageSent


@pytest.mark.slow  # two app starts
def test_a_worker_killed_with_reviews_pending_loses_nothing_and_the_other_carries_on(
    tmp_path: Path, services: dict[str, str], redis_url: str
) -> None:
    with app_pair(tmp_path, services) as (a, b), b.client() as cb:
        with a.client() as ca:
            for n in range(5):
                assert ca.post("/chat/", json={"user_id": "erin", "text": f"hello {n}"}).status_code == 200
        ids = [_pending(app, "erin", f"urgent: case {n}") for n, app in enumerate((a, b) * 3)]
        a.kill()  # SIGKILL: no shutdown hooks, as in a crash

        pending = cb.get("/reviews", auth=b.reviewer_auth).json()
        assert sorted(r["instance_id"] for r in pending) == sorted(ids)
        for instance_id in ids:
            decided = cb.post(f"/reviews/{instance_id}", json={"approved": True}, auth=b.reviewer_auth)
            assert decided.status_code == 200, decided.text
            assert cb.get(f"/chat/{instance_id}?wait=10").json()["status"] == "completed"
        for n in range(5):
            assert cb.post("/chat/", json={"user_id": "erin", "text": f"again {n}"}).status_code == 200
        stored = cb.get("/conversations/erin?limit=100", headers=b.admin_headers).json()
        assert len(stored) == 16  # 5 on A, 6 reviewed, 5 on B: each once
        # counted once each, while B runs: events A committed and did not publish wait for B's relay (its
        # next commit, or its sweep)
        counts = redis.Redis.from_url(redis_url)
        assert eventually(lambda: counts.get("message_count:erin") == b"16", timeout=45)


@pytest.mark.slow  # two app starts
def test_with_redis_cut_off_a_wait_on_one_process_still_ends_soon_after_a_decision_on_the_other(
    tmp_path: Path, services: dict[str, str], redis_url: str
) -> None:
    """A's Redis (counters and wake-ups) is down: A's waiters re-read the database every second instead."""
    with TcpProxy("127.0.0.1", 6379) as proxy:
        first = AppProcess(tmp_path / "a", env={**services, "REDIS_URL": proxy.wrap_url(redis_url)})
        second = AppProcess(
            tmp_path / "b",
            env={
                **services,
                "DACA_REVIEWER_PASSWORD": first.reviewer_password,
                "DACA_ADMIN_TOKEN": first.admin_token,
            },
        )
        with first as a, second as b, a.client(timeout=30) as ca, ThreadPoolExecutor(1) as pool:
            a.start()
            b.start()
            proxy.cut("refuse")
            time.sleep(1.0)  # A's listener notices at once: its connection was reset
            deciding = pool.submit(_decide_when_pending, b, "urgent: while Redis is down")
            answer = ca.post("/chat/?wait=20", json={"user_id": "fay", "text": "urgent: while Redis is down"})
            took = time.monotonic() - deciding.result(timeout=5)
            assert answer.status_code == 200 and answer.json()["metadata"]["status"] == "completed", (
                answer.text
            )
            assert took < 4.0, f"A answered {took:.1f} s after B's decision with Redis down"
            print(f"with A's Redis cut off, A answered {took:.2f} s after B's decision")

            proxy.restore()
            time.sleep(7.0)  # A's listener reconnects (backoff up to 5 s)
            deciding = pool.submit(_decide_when_pending, b, "urgent: Redis is back")
            answer = ca.post("/chat/?wait=20", json={"user_id": "fay", "text": "urgent: Redis is back"})
            took = time.monotonic() - deciding.result(timeout=5)
            assert answer.json()["metadata"]["status"] == "completed"
            assert took < 1.0, f"A answered {took:.1f} s after B's decision once Redis was back"
            print(f"with A's Redis back, A answered {took:.2f} s after B's decision")
