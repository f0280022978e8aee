"""`WEB_CONCURRENCY=2 python app.py`: two worker processes on one port, the REST API served by both, the
Gradio UI (worker 0's) reachable through either, and SQLite refused with what to set instead."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from gradio_client import Client

from daca_kit.ops.launcher import APP_PY
from tests.support.appproc import AppProcess, eventually


def _worker_pids(app: AppProcess, requests: int = 40) -> set[int]:
    def one(_n: int) -> int:
        # A new connection each time; one that a worker took as it was killed or replaced is reset,
        # so ask again (the caller's deadline bounds the whole search).
        for attempt in range(3):
            try:
                with httpx.Client(base_url=app.base_url, trust_env=False, timeout=10) as client:
                    body = client.get("/health", headers=app.admin_headers).json()
                return int(body["worker"]["pid"])
            except httpx.TransportError:
                if attempt == 2:
                    raise
                time.sleep(0.2)
        raise AssertionError("unreachable")

    with ThreadPoolExecutor(8) as pool:
        return set(pool.map(one, range(requests)))


def _both_workers(app: AppProcess, seconds: float) -> set[int]:
    """The worker pids seen answering within `seconds` (until two are seen)."""
    pids: set[int] = set()
    deadline = time.monotonic() + seconds
    while len(pids) < 2 and time.monotonic() < deadline:
        pids |= _worker_pids(app)
    return pids


@pytest.mark.slow  # starts two workers with the UI
def test_two_workers_serve_rest_and_the_ui_through_one_port(workers: AppProcess) -> None:
    app = workers
    # /health answers once one worker listens; the UI's takes longer (a busy machine: a minute)
    pids = _both_workers(app, 120)
    assert len(pids) == 2, pids
    assert app.pid not in pids  # the supervisor serves nothing itself
    with httpx.Client(base_url=app.base_url, trust_env=False) as anyone:
        public = anyone.get("/health").json()
    assert "worker" not in public  # which process answered is for reviewers and the admin

    client = Client(app.base_url, verbose=False, download_files=False)
    try:
        for n in range(4):  # new HTTP connections each time: they land on either worker
            done = client.predict("alice", f"Hello {n}", api_name="/chat")
            assert done["status"] == "completed", done
        held = client.predict("alice", "This is an urgent request!", api_name="/chat")
        assert held["status"] == "pending_review"
        with app.client() as rest:
            decided = rest.post(
                f"/reviews/{held['instance_id']}", json={"approved": True}, auth=app.reviewer_auth
            )
            assert decided.status_code == 200, decided.text
        deadline = time.monotonic() + 10
        turn = client.predict(held["instance_id"], api_name="/turn")
        while turn["status"] == "pending_review" and time.monotonic() < deadline:
            time.sleep(0.1)
            turn = client.predict(held["instance_id"], api_name="/turn")
        assert turn["status"] == "completed"
    finally:
        client.close()
    with app.client() as rest:
        assert len(rest.get("/conversations/alice", headers=app.admin_headers).json()) == 5


def test_several_workers_on_sqlite_are_refused_with_what_to_set(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DB_CONNECTION")}
    env.update({"WEB_CONCURRENCY": "2", "PORT": "1", "HOST": "127.0.0.1"})
    done = subprocess.run(
        [sys.executable, str(APP_PY)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "WEB_CONCURRENCY=2 needs a database that all worker processes share" in done.stderr
    assert "DATABASE_URL=postgresql://" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow  # starts two workers, kills one and waits for its successor
def test_a_killed_worker_is_started_again_and_its_pending_reviews_are_served_meanwhile(
    tmp_path: Path, pg_url: str, redis_url: str
) -> None:
    env = {"DATABASE_URL": pg_url, "REDIS_URL": redis_url, "WEB_CONCURRENCY": "2"}
    with AppProcess(tmp_path, env=env, startup_timeout=90) as app:  # REST only: both workers alike
        app.start()
        pids = _both_workers(app, 60)
        assert len(pids) == 2, pids
        with app.client() as rest:
            ids = []
            for n in range(6):
                sent = rest.post("/chat/?wait=0", json={"user_id": "gus", "text": f"urgent: case {n}"})
                assert sent.status_code == 202, sent.text
                ids.append(sent.json()["instance_id"])
        victim = min(pids)
        os.kill(victim, signal.SIGKILL)
        time.sleep(1.0)  # gone (a request it had accepted would be lost with it, as in any crash)

        # the other worker answers meanwhile, with every review still pending
        def pending() -> list[str]:
            with httpx.Client(base_url=app.base_url, trust_env=False, timeout=10) as client:
                return [r["instance_id"] for r in client.get("/reviews", auth=app.reviewer_auth).json()]

        assert sorted(pending()) == sorted(ids)
        deadline = time.monotonic() + 60
        now: set[int] = set()
        while not (len(now) == 2 and victim not in now) and time.monotonic() < deadline:
            now = _worker_pids(app, requests=20)
        assert len(now) == 2 and victim not in now, now  # its successor serves beside the survivor
        with app.client() as rest:
            for instance_id in ids:
                decided = rest.post(
                    f"/reviews/{instance_id}", json={"approved": True}, auth=app.reviewer_auth
                )
                assert decided.status_code == 200, decided.text
                assert rest.get(f"/chat/{instance_id}?wait=10").json()["status"] == "completed"
            assert len(rest.get("/conversations/gus", headers=app.admin_headers).json()) == 6


@pytest.mark.slow  # starts two workers on Postgres, Redis and RabbitMQ
def test_two_workers_on_a_broker_count_every_turn_once_through_one_consumer(
    tmp_path: Path, pg_url: str, redis_url: str, amqp_url: str
) -> None:
    import pika
    import redis

    env = {"DATABASE_URL": pg_url, "REDIS_URL": redis_url, "AMQP_URL": amqp_url, "WEB_CONCURRENCY": "2"}
    counts = redis.Redis.from_url(redis_url, decode_responses=True)
    with AppProcess(tmp_path, env=env, startup_timeout=90) as app:
        app.start()
        pids = _both_workers(app, 120)
        assert len(pids) == 2, pids
        for i in range(30):  # a new connection each time: the turns land on either worker
            with httpx.Client(base_url=app.base_url, trust_env=False, timeout=30) as client:
                answer = client.post("/chat/", json={"user_id": f"w{i % 3}", "text": f"turn {i}"})
            assert answer.status_code == 200, answer.text
        expected = {f"message_count:w{u}": "10" for u in range(3)}
        eventually(lambda: {k: counts.get(k) for k in expected} == expected, timeout=30)
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        try:
            queue = connection.channel().queue_declare(queue="daca-analytics-messages", passive=True)
        finally:
            connection.close()
        assert queue.method.consumer_count == 1  # one worker counts for both
        assert queue.method.message_count == 0
    time.sleep(0.5)
    assert {k: counts.get(k) for k in expected} == expected  # and nothing was counted twice
    counts.close()
