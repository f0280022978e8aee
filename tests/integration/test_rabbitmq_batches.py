"""PikaEventBus.publish_many on the real RabbitMQ: a batch committed in one transaction reaches the
consumer whole and in order, batches after a lost connection included; an event of a subscribed topic
that reaches no queue is handed back (the outbox keeps it) while the rest of its batch is delivered, and
the next batch declares the queue again."""

from __future__ import annotations

import time

import pika
import pytest

from daca_kit.adapters.rabbitmq import PikaEventBus

pytestmark = pytest.mark.integration


def _until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)
    return predicate()


def test_a_batch_reaches_the_consumer_whole_and_in_order(amqp_url: str) -> None:
    bus = PikaEventBus(amqp_url)
    seen: list[str] = []
    bus.subscribe("batch-test", lambda event: seen.append(event["id"]), consumer="t")
    try:
        assert bus.wait_ready(10)
        batch = [("batch-test", {"id": f"e{i}", "type": "X"}) for i in range(50)]
        assert bus.publish_many(batch) == []
        assert _until(lambda: len(seen) == 50)
        assert seen == [f"e{i}" for i in range(50)]  # in order, each once

        bus._drop_publisher()  # the connection is gone (e.g. the broker restarted): the next batch reconnects
        assert bus.publish_many([("batch-test", {"id": "after", "type": "X"})]) == []
        assert _until(lambda: len(seen) == 51) and seen[-1] == "after"

        deleter = pika.BlockingConnection(pika.URLParameters(amqp_url))
        deleter.channel().queue_delete(queue="t-batch-test")  # e.g. removed by the broker's operator
        deleter.close()
        mixed = [
            ("batch-test", {"id": "back-1", "type": "X"}),
            ("nobody-listens", {"id": "dropped-1", "type": "X"}),  # a topic nobody subscribes to
        ]
        assert bus.publish_many(mixed) == [0]  # refused: the outbox keeps it
        assert bus.publish_many([("batch-test", {"id": "back-1", "type": "X"})]) == []  # queue declared again
        assert _until(lambda: "back-1" in seen)
        assert seen.count("back-1") == 1
    finally:
        bus.close()
