"""The event bus on RabbitMQ with pika (`amqp://`, or `amqps://` for CloudAMQP).

    bus = PikaEventBus("amqps://user:pass@host/vhost")
    bus.subscribe("messages", handler, consumer="daca-analytics")
    bus.publish("messages", event)   # returns once the broker confirmed it
    bus.publish_many([("messages", e1), ("messages", e2)])   # one transaction: one round trip

Each topic is a durable fanout exchange named after the topic; each consumer has a durable queue
`{consumer}-{topic}` (the names Dapr's RabbitMQ pub/sub uses, so both can share a broker). Messages are
persistent, publishes are confirmed (a batch by its AMQP transaction's commit), acks are manual, and
prefetch is bounded so a slow consumer never holds more than `prefetch` unacked messages (CloudAMQP's
free plan allows 1,000). Consumers reconnect with backoff after the broker restarts or the network drops.

Publishes are `mandatory`: a fanout exchange with no queue bound confirms a message and drops it, which
happens when a consumer's queue does not exist yet or was deleted (CloudAMQP removes queues unused for
weeks on shared plans). The broker returns such a message instead, and pika raises `UnroutableError`
after the confirm (publisher confirms are required for that; pika's docs,
docs/examples/blocking_publish_mandatory.rst). For a topic this bus subscribes to, that is a failed
publish (a `BusError`: the outbox keeps the event), and the next publish declares the topic's queues and
bindings again before it retries, so the system heals without waiting for the consumer to reconnect.
A topic nobody subscribes to through this bus (`human-review`) has no queue to declare: its returned
events are dropped, as on any pub/sub topic without subscribers.

    bus.py       PikaEventBus: publishing (one event confirmed, or a batch in one transaction), subscribing
    consumer.py  QueueConsumer: the thread that reads one queue and reconnects with backoff
    topology.py  URLs, the topic's exchange and queues, and pika's failures as sentences
"""

from __future__ import annotations

from daca_kit.adapters.rabbitmq.bus import PikaEventBus
from daca_kit.adapters.rabbitmq.topology import (
    amqp_address,
    declare_topic,
    describe_amqp_url,
    explain_amqp_error,
)

__all__ = ["PikaEventBus", "amqp_address", "declare_topic", "describe_amqp_url", "explain_amqp_error"]
