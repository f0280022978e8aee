"""PikaEventBus: the `EventBus` on RabbitMQ (see the package docstring for its guarantees).

bus = PikaEventBus("amqps://user:pass@host/vhost")
bus.publish("messages", event)                            # returns once the broker confirmed it
bus.publish_many([("messages", e1), ("messages", e2)])    # one transaction: one round trip
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import pika
import pika.exceptions

from daca_kit.adapters.network import elapsed_ms, reach
from daca_kit.adapters.rabbitmq.consumer import QueueConsumer
from daca_kit.adapters.rabbitmq.topology import (
    amqp_address,
    declare_topic,
    describe_amqp_url,
    explain_amqp_error,
)
from daca_kit.core.models import Backend, RoundTrip
from daca_kit.core.ports import Handler
from daca_kit.errors import BusError

log = logging.getLogger(__name__)


class PikaEventBus:
    """`EventBus` on RabbitMQ."""

    name = "rabbitmq"

    def __init__(
        self,
        url: str,
        *,
        prefetch: int = 100,
        reconnect_min: float = 0.2,
        reconnect_max: float = 5.0,
        timeout: float = 5.0,
    ) -> None:
        if not 0 < prefetch < 1000:
            raise ValueError("prefetch must be between 1 and 999 (CloudAMQP allows 1,000 unacked messages)")
        self.url = url
        label = describe_amqp_url(url)
        tls = url.lower().startswith("amqps")
        self.backend = Backend("rabbitmq", label, "RabbitMQ over TLS (e.g. CloudAMQP)" if tls else "RabbitMQ")
        self.prefetch = prefetch
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self.timeout = timeout
        self.published = 0
        self.delivered = 0
        self._pub_lock = threading.Lock()
        self._pub_conn: pika.BlockingConnection | None = None
        self._pub_channel: Any = None
        self._batch_channel: Any = None  # transactional, for publish_many
        self._returned: list[str] = []  # message ids the broker returned on the batch channel
        self._declared: set[str] = set()
        self._queues: dict[str, set[str]] = {}  # topic -> the queues of this bus's subscriptions
        self._unsubscribed_noted: set[str] = set()
        self._consumers: list[QueueConsumer] = []
        self._closed = threading.Event()

    def __repr__(self) -> str:
        return f"PikaEventBus({self.backend.label!r})"  # never the password

    @property
    def calls(self) -> int:
        return self.published

    def _params(self) -> pika.URLParameters:
        params = pika.URLParameters(self.url)
        params.heartbeat = 30
        params.blocked_connection_timeout = 30
        params.socket_timeout = self.timeout
        params.stack_timeout = self.timeout * 2
        params.connection_attempts = 1
        params.client_properties = {"connection_name": "daca-kit"}
        return params

    def connect(self) -> pika.BlockingConnection:
        try:
            return pika.BlockingConnection(self._params())
        # pika raises ValueError when a connection is reset during its handshake.
        except (pika.exceptions.AMQPError, OSError, ValueError) as exc:
            raise explain_amqp_error(exc, self.url, connecting=True) from exc

    # -- publishing ----------------------------------------------------------------------------
    def _publisher(self) -> Any:
        if (
            self._pub_conn is None
            or self._pub_conn.is_closed
            or self._pub_channel is None
            or self._pub_channel.is_closed
        ):
            self._drop_publisher()
            self._pub_conn = self.connect()
            self._pub_channel = self._pub_conn.channel()
            self._pub_channel.confirm_delivery()
            self._declared.clear()
        return self._pub_channel

    def _drop_publisher(self) -> None:
        conn, self._pub_conn, self._pub_channel = self._pub_conn, None, None
        self._batch_channel = None
        if conn is not None and conn.is_open:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail again
                pass

    def publish(self, topic: str, event: dict[str, Any]) -> None:
        body = json.dumps(event).encode()
        props = _properties(event)
        with self._pub_lock:
            # A connection idle past the broker's heartbeat may be dead: reconnect once, then give up.
            for attempt in (1, 2):
                try:
                    channel = self._publisher()
                    if topic not in self._declared:
                        declare_topic(channel, topic, sorted(self._queues.get(topic, ())))
                        self._declared.add(topic)
                    channel.basic_publish(
                        exchange=topic, routing_key="", body=body, properties=props, mandatory=True
                    )
                    self.published += 1
                    if self._pub_conn is not None:
                        self._pub_conn.process_data_events(0)
                    return
                except pika.exceptions.UnroutableError as exc:
                    # The broker took it (one message on the plan's quota), then returned it.
                    self.published += 1
                    self._unroutable(topic, exc)
                    return
                except pika.exceptions.NackError as exc:
                    raise BusError(
                        f"RabbitMQ refused the {topic} event (nack); it stays in the outbox"
                    ) from exc
                except BusError:
                    self._drop_publisher()
                    raise
                except (pika.exceptions.AMQPError, OSError, ValueError) as exc:
                    self._drop_publisher()
                    if attempt == 2:
                        raise explain_amqp_error(exc, self.url) from exc

    def publish_many(self, events: list[tuple[str, dict[str, Any]]]) -> list[int]:
        """Publishes (topic, event) pairs in one AMQP transaction; see `BatchPublisher`.

        One round trip for the batch instead of a confirm per event: RabbitMQ takes responsibility for a
        transaction's messages (queued and, persistent ones, durable) at its commit, and sends the
        returns of unroutable `mandatory` ones at the commit, before commit-ok (rabbitmq.com/semantics.html,
        "Semantics of tx"). A channel is either transactional or in confirm mode, so the batch has its own.
        As with `publish`, an event returned on a topic this bus subscribes to is refused (its position
        is returned, the outbox keeps it, the next attempt declares the queue again); one on a topic
        nobody subscribes to is dropped.
        """
        messages = [(topic, json.dumps(event).encode(), _properties(event)) for topic, event in events]
        with self._pub_lock:
            for attempt in (1, 2):  # nothing of an uncommitted transaction is published: send it again
                try:
                    channel = self._transaction_channel()
                    for topic in {topic for topic, _body, _props in messages} - self._declared:
                        declare_topic(channel, topic, sorted(self._queues.get(topic, ())))
                        self._declared.add(topic)
                    self._returned.clear()
                    # The blocking channel's basic_publish writes each message to the socket and waits
                    # until it left (a system call and, in a busy process, a wait for the interpreter
                    # lock per event); its underlying channel only frames it, and tx_commit below sends
                    # the whole batch with the commit in one write and waits for commit-ok.
                    publish = channel._impl.basic_publish
                    for topic, body, props in messages:
                        publish(exchange=topic, routing_key="", body=body, properties=props, mandatory=True)
                    channel.tx_commit()
                    if self._pub_conn is not None:
                        self._pub_conn.process_data_events(0)  # delivers the returns read before commit-ok
                    self.published += len(messages)
                    return self._refused(events)
                except (pika.exceptions.AMQPError, OSError, ValueError) as exc:
                    self._drop_publisher()
                    if attempt == 2:
                        raise explain_amqp_error(exc, self.url) from exc
        return []  # not reached

    def _refused(self, events: list[tuple[str, dict[str, Any]]]) -> list[int]:
        """Positions of the batch's returned events on topics this bus subscribes to."""
        returned = set(self._returned)
        refused: list[int] = []
        for i, (topic, event) in enumerate(events):
            if str(event.get("id", "")) in returned and not self._nobody_subscribes(topic):
                refused.append(i)
                self._declared.discard(topic)  # the next attempt declares the queues and bindings again
        return refused

    def _transaction_channel(self) -> Any:
        self._publisher()  # the connection
        if self._batch_channel is None or self._batch_channel.is_closed:
            assert self._pub_conn is not None
            channel = self._pub_conn.channel()
            channel.tx_select()
            channel.add_on_return_callback(
                lambda _ch, _method, props, _body: self._returned.append(str(props.message_id or ""))
            )
            self._batch_channel = channel
        return self._batch_channel

    def _unroutable(self, topic: str, exc: pika.exceptions.UnroutableError) -> None:
        """A message the broker returned: no queue is bound to the topic's exchange."""
        queues = sorted(self._queues.get(topic, ()))
        if self._nobody_subscribes(topic):
            return
        self._declared.discard(topic)  # the next attempt declares the queues and bindings again
        raise BusError(
            f"RabbitMQ routed the {topic} event to no queue (queue {', '.join(queues)} was deleted or not "
            "declared yet); it stays in the outbox and the next attempt declares the queue again"
        ) from exc

    def _nobody_subscribes(self, topic: str) -> bool:
        """True (noted once in the log) for a topic with no queue of this bus's subscriptions."""
        if self._queues.get(topic):
            return False
        if topic not in self._unsubscribed_noted:
            self._unsubscribed_noted.add(topic)
            log.info("no queue is bound to exchange '%s': nobody subscribes to its events", topic)
        return True

    # -- consuming -----------------------------------------------------------------------------
    def subscribe(self, topic: str, handler: Handler, *, consumer: str, consume: bool = True) -> None:
        """Consumes `consumer`'s durable queue of `topic`; with `consume=False` only declares and routes to
        it (its events are another process's to consume, and one that reaches no queue stays in the outbox)."""
        queue = f"{consumer}-{topic}"
        with self._pub_lock:
            self._queues.setdefault(topic, set()).add(queue)
            self._declared.discard(topic)  # the next publish declares the new queue too
        if not consume:
            return
        worker = QueueConsumer(self, topic, handler, queue)
        self._consumers.append(worker)
        worker.start()

    def wait_ready(self, timeout: float = 10.0) -> bool:
        """True once every consumer has declared its queue (tests use this before publishing)."""
        deadline = time.monotonic() + timeout
        for worker in self._consumers:
            if not worker.ready.wait(max(0.0, deadline - time.monotonic())):
                return False
        return True

    def ping(self) -> None:
        self.connect().close()

    def check(self) -> RoundTrip:
        """Opens the port, then logs in and opens one channel (see `Checkable`)."""
        start = time.perf_counter()
        host, port, _vhost = amqp_address(self.url)
        reach(
            host, port, setting="AMQP_URL", what="the RabbitMQ broker", timeout=self.timeout, error=BusError
        )
        connection = self.connect()
        try:
            connection.channel().close()
        except (pika.exceptions.AMQPError, OSError, ValueError) as exc:
            raise explain_amqp_error(exc, self.url) from exc
        finally:
            if connection.is_open:
                connection.close()
        return RoundTrip(elapsed_ms(start), "RabbitMQ accepted the login and opened a channel.")

    def close(self) -> None:
        self._closed.set()
        for worker in self._consumers:
            worker.stop()
        for worker in self._consumers:
            worker.join(timeout=10)
        self._consumers.clear()
        with self._pub_lock:
            self._drop_publisher()


def _properties(event: dict[str, Any]) -> pika.BasicProperties:
    """A persistent CloudEvents message whose id is the event's (the consumer's idempotency key)."""
    return pika.BasicProperties(
        content_type="application/cloudevents+json",
        delivery_mode=pika.DeliveryMode.Persistent,
        message_id=str(event.get("id", "")),
        type=str(event.get("type", "")),
    )
