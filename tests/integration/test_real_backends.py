"""The tutorial's Step 5 on the real local Postgres, Redis and RabbitMQ, plus each adapter on its service."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
import redis
from fastapi.testclient import TestClient

from daca_kit.adapters.rabbitmq import PikaEventBus
from daca_kit.adapters.redis import RedisCounters
from daca_kit.adapters.sql import SqlCounters, open_stores
from daca_kit.bootstrap import bootstrap
from daca_kit.core.workflow import cloud_event
from daca_kit.web.api import create_api

pytestmark = pytest.mark.integration
REVIEWER = ("reviewer", "test-reviewer-pw")
ADMIN = {"Authorization": "Bearer test-admin-token"}


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_step5_on_postgres_redis_rabbitmq(settings_factory, pg_url, redis_url, amqp_url) -> None:
    settings = settings_factory(database_url=pg_url, redis_url=redis_url, amqp_url=amqp_url)
    kit = bootstrap(settings).start()
    try:
        assert kit.backends["database"].kind == "postgres"
        assert kit.backends["counters"].label.startswith("redis://")
        assert kit.backends["events"].label.startswith("amqp://")
        assert isinstance(kit.bus, PikaEventBus) and kit.bus.wait_ready(10)
        http = TestClient(create_api(kit))
        http.post("/analytics/alice/initialize", json={"message_count": 5}, headers=ADMIN)
        http.post("/analytics/bob/initialize", json={"message_count": 3}, headers=ADMIN)

        result: dict = {}

        def send() -> None:  # the tutorial's curl: it waits for the reviewer
            result["response"] = http.post(
                "/chat/?wait=20", json={"user_id": "bob", "text": "This is an urgent request!"}
            )

        sender = threading.Thread(target=send)
        sender.start()
        assert wait_for(lambda: len(http.get("/reviews", auth=REVIEWER).json()) == 1)
        [review] = http.get("/reviews", auth=REVIEWER).json()
        assert review["user_id"] == "bob" and "3 messages" in review["proposed_reply"]
        assert (
            http.post(f"/reviews/{review['instance_id']}", json={"approved": True}, auth=REVIEWER).status_code
            == 200
        )
        sender.join(20)
        response = result["response"]
        assert response.status_code == 200
        assert response.json()["reply"] == review["proposed_reply"]

        with psycopg.connect(pg_url) as conn:
            rows = conn.execute("SELECT user_id, message, reply FROM conversation").fetchall()
        assert rows == [("bob", "This is an urgent request!", review["proposed_reply"])]

        client = redis.Redis.from_url(redis_url, decode_responses=True)
        assert wait_for(lambda: client.get("message_count:bob") == "4")
        # A redelivered MessageSent (same event id) does not count twice.
        event_id = f"{review['instance_id']}:MessageSent"
        kit.bus.publish("messages", cloud_event("MessageSent", event_id, "messages", {"user_id": "bob"}))
        time.sleep(0.5)
        assert client.get("message_count:bob") == "4"
        assert client.get("message_count:alice") == "5"
        assert http.get("/health").json()["status"] == "healthy"
    finally:
        kit.close()


def test_many_turns_on_real_backends_each_counted_once(settings_factory, pg_url, redis_url, amqp_url) -> None:
    kit = bootstrap(settings_factory(database_url=pg_url, redis_url=redis_url, amqp_url=amqp_url)).start()
    try:
        kit.bus.wait_ready(10)
        threads = [
            threading.Thread(target=lambda i=i: kit.chat_sync(f"user{i % 4}", f"hello {i}"))
            for i in range(40)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        assert wait_for(lambda: sum(int(client.get(f"message_count:user{u}") or 0) for u in range(4)) == 40)
        # A row leaves the outbox once its publish is confirmed, which can be after the consumer counted it.
        assert wait_for(lambda: kit.stores.outbox.size() == 0)
        assert len(kit.conversations("user0", 100)) == 10
    finally:
        kit.close()


def test_a_turn_costs_two_redis_commands_and_one_publish(
    settings_factory, pg_url, redis_url, amqp_url
) -> None:
    kit = bootstrap(
        settings_factory(database_url=pg_url, redis_url=redis_url, amqp_url=amqp_url, rate_limit="100/minute")
    ).start()
    try:
        kit.bus.wait_ready(10)
        kit.chat_sync("warm", "up")
        assert wait_for(lambda: kit.stores.outbox.size() == 0 and kit.message_count("warm") == 1)
        commands, published = kit.counters.commands, kit.bus.published
        for i in range(10):
            assert kit.chat_sync("meter", f"turn {i}").status == "completed"
        assert wait_for(lambda: kit.stores.outbox.size() == 0)
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        assert wait_for(lambda: client.get("message_count:meter") == "10")
        # Rate limit + count read, then the idempotent increment: 2 commands a turn at most (events the
        # consumer receives together are counted with one), counted where they are sent; a connection the
        # pool opens meanwhile adds its SELECT (this test's Redis database is not 0).
        # tests/integration/test_redis_commandstats.py checks the count exactly, on the server.
        assert 11 <= kit.counters.commands - commands <= 22
        assert kit.bus.published - published == 10
    finally:
        kit.close()


def test_history_query_is_bounded_and_indexed_on_postgres(pg_url) -> None:
    stores = open_stores(pg_url)
    stores.database.create_all()
    store = stores.conversations
    from daca_kit.core.clock import utcnow

    for other in range(20):
        store.bulk_insert_turns(f"other{other}", [("x", "y")] * 1000, utcnow())
    store.bulk_insert_turns("heavy", [(f"m{i}", f"r{i}") for i in range(5000)], utcnow())
    for other in range(20, 40):
        store.bulk_insert_turns(f"other{other}", [("x", "y")] * 1000, utcnow())
    with psycopg.connect(pg_url) as conn:
        conn.execute("ANALYZE conversation")
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                "EXPLAIN SELECT message, reply FROM conversation WHERE user_id = 'heavy' ORDER BY id DESC LIMIT 10"
            )
        )
    assert "ix_conversation_user_id_id" in plan
    history = store.history("heavy", 10)
    assert [t.message for t in history] == [f"m{i}" for i in range(4990, 5000)]
    stores.database.close()


def test_redis_counters_adapter(redis_url) -> None:
    counters = RedisCounters.from_url(redis_url)
    assert counters.increment_once("u", "e1") == 1
    assert counters.increment_once("u", "e1") == 1
    assert counters.increment_once("u", "e2") == 2
    counters.set("v", 7)
    assert counters.all() == {"u": 2, "v": 7}
    assert counters.reset() == 2 and counters.get("u") == 0
    assert counters.hit("k", 1, 60)[0] is True
    allowed, retry = counters.hit("k", 1, 60)
    assert allowed is False and 0 < retry <= 60
    counters.close()


def test_redis_counters_report_a_closed_port_as_a_sentence() -> None:
    from daca_kit.errors import CountersError

    counters = RedisCounters.from_url("redis://:secret-pw@127.0.0.1:1/0", timeout=1)
    with pytest.raises(CountersError) as info:
        counters.get("u")
    assert "REDIS_URL" in str(info.value) and "secret-pw" not in str(info.value)


def test_sql_counters_on_postgres_are_idempotent_under_concurrency(pg_url) -> None:
    stores = open_stores(pg_url)
    stores.database.create_all()
    counters = SqlCounters(stores.database)
    threads = [threading.Thread(target=counters.increment_once, args=("p", f"e{i % 10}")) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counters.get("p") == 10
    stores.database.close()


def test_rabbitmq_redelivers_when_the_handler_fails(amqp_url) -> None:
    bus = PikaEventBus(amqp_url)
    seen: list[str] = []
    failures = {"left": 2}

    def flaky(event: dict) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("counters down")
        seen.append(event["id"])

    bus.subscribe("redelivery-test", flaky, consumer="t")
    try:
        assert bus.wait_ready(10)
        bus.publish("redelivery-test", {"id": "only-one", "type": "X"})
        assert wait_for(lambda: seen == ["only-one"], 10)
    finally:
        bus.close()


def test_redis_counts_a_batch_with_one_command(redis_url) -> None:
    counters = RedisCounters.from_url(redis_url)
    try:
        counters.increment_once("u", "e1")
        before = counters.commands
        batch = [("u", "e1"), ("u", "e2"), ("w", "e3"), ("u", "e2")]
        assert counters.increment_many(batch) == 2  # e1 counted before, e2 twice in the batch is once
        assert counters.commands - before == 1  # one EVALSHA for the batch
        assert counters.all() == {"u": 2, "w": 1}
        assert counters.increment_many(batch) == 0 and counters.all() == {"u": 2, "w": 1}  # redelivered
    finally:
        counters.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_sql_counts_a_batch_in_one_transaction(backend, pg_url, tmp_path) -> None:
    stores = open_stores(pg_url if backend == "postgres" else f"sqlite:///{tmp_path / 'c.db'}")
    stores.database.create_all()
    counters = SqlCounters(stores.database)
    try:
        counters.increment_once("u", "e1")
        batch = [("u", "e1"), ("u", "e2"), ("w", "e3"), ("u", "e2")]
        assert counters.increment_many(batch) == 2
        assert counters.all() == {"u": 2, "w": 1}
        assert counters.increment_many(batch) == 0 and counters.all() == {"u": 2, "w": 1}
    finally:
        stores.database.close()


class _Batches:
    """A batch handler that records what it was given, failing its first `fail` calls."""

    def __init__(self, fail: int = 0) -> None:
        self.batches: list[list[str]] = []
        self.fail = fail

    def __call__(self, event: dict) -> None:
        self.handle_many([event])

    def handle_many(self, events: list[dict]) -> None:
        if self.fail:
            self.fail -= 1
            raise RuntimeError("counters down")
        self.batches.append([e["id"] for e in events])

    def ids(self) -> list[str]:
        return [i for batch in self.batches for i in batch]


def test_rabbitmq_hands_a_batch_handler_what_arrived_together(amqp_url) -> None:
    bus = PikaEventBus(amqp_url)
    handler = _Batches()
    bus.subscribe("together-test", handler, consumer="t")
    try:
        assert bus.wait_ready(10)
        assert bus.publish_many([("together-test", {"id": f"e{i}", "type": "X"}) for i in range(60)]) == []
        assert wait_for(lambda: len(handler.ids()) == 60, 10)
        assert handler.ids() == [f"e{i}" for i in range(60)]  # each once, in order
        assert len(handler.batches) < 60  # received together, handled together
        assert wait_for(lambda: bus.delivered == 60, 5)  # and acknowledged
    finally:
        bus.close()
    # Nothing is left unacknowledged: a new consumer on the queue gets nothing.
    again = PikaEventBus(amqp_url)
    late = _Batches()
    again.subscribe("together-test", late, consumer="t")
    try:
        assert again.wait_ready(10)
        time.sleep(1.0)
        assert late.ids() == []
    finally:
        again.close()


def test_rabbitmq_redelivers_a_failed_batch_whole(amqp_url) -> None:
    bus = PikaEventBus(amqp_url)
    handler = _Batches(fail=2)
    bus.subscribe("failed-batch-test", handler, consumer="t")
    try:
        assert bus.wait_ready(10)
        assert (
            bus.publish_many([("failed-batch-test", {"id": f"e{i}", "type": "X"}) for i in range(20)]) == []
        )
        assert wait_for(lambda: sorted(handler.ids()) == sorted(f"e{i}" for i in range(20)), 15)
        assert handler.fail == 0 and len(handler.ids()) == 20  # each once, after the two failures
    finally:
        bus.close()


def test_rate_limit_is_shared_across_processes_through_redis(settings_factory, redis_url, tmp_path) -> None:
    from daca_kit.errors import RateLimited

    kits = [
        bootstrap(
            settings_factory(
                database_url=f"sqlite:///{tmp_path}/k{i}.db", redis_url=redis_url, rate_limit="3/minute"
            )
        ).start()
        for i in range(2)
    ]
    try:
        accepted, refused = 0, 0
        for i in range(6):
            try:
                kits[i % 2].submit("shared", f"m{i}")
                accepted += 1
            except RateLimited as exc:
                refused += 1
                assert exc.retry_after >= 1
        assert (accepted, refused) == (3, 3)
    finally:
        for kit in kits:
            kit.close()
