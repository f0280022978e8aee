"""PikaEventBus.publish_many on the real RabbitMQ: a batch committed in one transaction reaches the
consumer whole, and an event no queue takes is handed back (so the outbox keeps it) while the rest of its
batch is delivered."""

from __future__ import annotations

import time

import pytest

from daca_kit.adapters.rabbitmq import PikaEventBus

pytestmark = pytest.mark.integration


def _until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)
    return predicate()


def test_a_batch_reaches_the_consumer_whole_and_unroutable_events_come_back(amqp_url: str) -> None:
    bus = PikaEventBus(amqp_url)
    seen: list[str] = []
    bus.subscribe("batch-test", lambda event: seen.append(event["id"]), consumer="t")
    try:
        assert bus.wait_ready(10)
        batch = [("batch-test", {"id": f"e{i}", "type": "X"}) for i in range(50)]
        assert bus.publish_many(batch) == []
        assert _until(lambda: len(seen) == 50)
        assert seen == [f"e{i}" for i in range(50)]  # in order, each once

        mixed = [
            ("batch-test", {"id": "kept-1", "type": "X"}),
            ("nobody-listens", {"id": "lost-1", "type": "X"}),  # an exchange with no queue bound
            ("batch-test", {"id": "kept-2", "type": "X"}),
        ]
        assert bus.publish_many(mixed) == [1]
        assert _until(lambda: len(seen) == 52)
        assert seen[-2:] == ["kept-1", "kept-2"]
        assert bus.calls == 53  # publishes sent, the returned one included
    finally:
        bus.close()
