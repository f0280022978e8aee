"""Events that reach no queue are kept and published again, on the real RabbitMQ.

A fanout exchange with no queue bound takes a message, confirms it and drops it. That happens when a
consumer's queue does not exist yet (a fresh vhost) or no longer exists (CloudAMQP deletes queues unused
for weeks on shared plans, an operator deletes one). The outbox must then keep the event and publish it
again once the queue is back, so no MessageSent is lost and every count stays exact.
"""

from __future__ import annotations

import time
import uuid

import pika
import pytest
import redis

from daca_kit.adapters.rabbitmq import PikaEventBus
from daca_kit.bootstrap import bootstrap
from daca_kit.errors import BusError
from tests.conftest import purge_queues
from tests.support.appproc import eventually

pytestmark = pytest.mark.integration

QUEUE = "daca-analytics-messages"  # the analytics consumer's queue: `{consumer}-{topic}`


def delete_queue(amqp_url: str, queue: str) -> None:
    """Deletes `queue` as an operator (or CloudAMQP's cleanup) would; only when empty, so no message
    the broker already holds is lost by the test itself."""
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        conn.channel().queue_delete(queue=queue, if_empty=True)
    finally:
        conn.close()


def test_a_publish_to_a_deleted_queue_fails_and_the_next_one_restores_the_queue(amqp_url) -> None:
    topic = f"routing-{uuid.uuid4().hex[:8]}"
    # The consumer stays away for 3 s after its queue is deleted: publishes in that window find no queue.
    bus = PikaEventBus(amqp_url, reconnect_min=3.0)
    seen: list[str] = []
    bus.subscribe(topic, lambda event: seen.append(event["id"]), consumer="t")
    try:
        assert bus.wait_ready(10)
        bus.publish(topic, {"id": "before", "type": "X"})
        eventually(lambda: seen == ["before"])
        delete_queue(amqp_url, f"t-{topic}")
        failures = 0
        for event_id in ("e1", "e2", "e3"):
            for _attempt in range(20):  # as the outbox relay does: a failed event is published again
                try:
                    bus.publish(topic, {"id": event_id, "type": "X"})
                    break
                except BusError as exc:
                    failures += 1
                    assert "no queue" in str(exc)
                    time.sleep(0.1)
        eventually(lambda: sorted(seen) == ["before", "e1", "e2", "e3"])
        assert failures >= 1  # the first publish after the deletion reached no queue and said so
    finally:
        bus.close()


def test_an_event_nobody_subscribes_to_does_not_block_the_outbox(amqp_url) -> None:
    # `human-review` has no consumer in the kit: its events must not be retried for ever.
    bus = PikaEventBus(amqp_url)
    try:
        bus.publish(f"unheard-{uuid.uuid4().hex[:8]}", {"id": "r1", "type": "HumanReviewRequired"})
        assert bus.published == 1
    finally:
        bus.close()


def test_counts_stay_exact_when_the_queue_is_deleted_while_the_app_runs(
    settings_factory, redis_url, amqp_url
) -> None:
    purge_queues(amqp_url)
    bus = PikaEventBus(amqp_url, reconnect_min=3.0)
    kit = bootstrap(settings_factory(redis_url=redis_url, amqp_url=amqp_url), bus=bus).start()
    counts = redis.Redis.from_url(redis_url, decode_responses=True)

    def total() -> int:
        return sum(int(counts.get(f"message_count:u{u}") or 0) for u in range(3))

    try:
        assert bus.wait_ready(10)
        assert kit.chat_sync("u0", "warm up").status == "completed"
        sent = 1
        eventually(lambda: total() == 1)
        for _round in range(3):
            delete_queue(amqp_url, QUEUE)  # idle and empty, as CloudAMQP finds an unused queue
            for _turn in range(10):
                assert kit.chat_sync(f"u{sent % 3}", f"turn {sent}").status == "completed"
                sent += 1
            eventually(lambda sent=sent: total() == sent and kit.stores.outbox.size() == 0)
        assert kit.relay is not None and kit.relay.failures >= 1  # the relay saw the unroutable publishes
    finally:
        kit.close()
        counts.close()
