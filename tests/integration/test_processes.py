"""Two app processes on one Postgres, Redis and RabbitMQ (two workers or two replicas): a review decided on
one resumes the turn once, and whoever waits for it on the other learns of it at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis

from daca_kit.adapters.sql import open_stores
from daca_kit.core.ports import Stores
from tests.support.appproc import AppProcess, eventually

pytestmark = pytest.mark.integration


@pytest.fixture
def two_apps(tmp_path: Path, pg_url: str, redis_url: str, amqp_url: str) -> Iterator[list[AppProcess]]:
    shared = {"DATABASE_URL": pg_url, "REDIS_URL": redis_url, "AMQP_URL": amqp_url}
    first = AppProcess(tmp_path / "a", env=shared)
    # The same reviewer password and admin token in both, as two workers of one app have.
    second = AppProcess(
        tmp_path / "b",
        env={
            **shared,
            "DACA_REVIEWER_PASSWORD": first.reviewer_password,
            "DACA_ADMIN_TOKEN": first.admin_token,
        },
    )
    with first, second:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda app: app.start(), (first, second)))
        yield [first, second]


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
