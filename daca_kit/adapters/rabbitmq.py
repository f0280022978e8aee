"""The event bus on RabbitMQ with pika (`amqp://`, or `amqps://` for CloudAMQP).

    bus = PikaEventBus("amqps://user:pass@host/vhost")
    bus.subscribe("messages", handler, consumer="daca-analytics")
    bus.publish("messages", event)   # returns once the broker confirmed it

Each topic is a durable fanout exchange named after the topic; each consumer has a durable queue
`{consumer}-{topic}` (the names Dapr's RabbitMQ pub/sub uses, so both can share a broker). Messages are
persistent, publishes are confirmed, acks are manual, and prefetch is bounded so a slow consumer never
holds more than `prefetch` unacked messages (CloudAMQP's free plan allows 1,000). Consumers reconnect
with backoff after the broker restarts or the network drops.

Publishes are `mandatory`: a fanout exchange with no queue bound confirms a message and drops it, which
happens when a consumer's queue does not exist yet or was deleted (CloudAMQP removes queues unused for
weeks on shared plans). The broker returns such a message instead, and pika raises `UnroutableError`
after the confirm (publisher confirms are required for that; pika's docs,
docs/examples/blocking_publish_mandatory.rst). For a topic this bus subscribes to, that is a failed
publish (a `BusError`: the outbox keeps the event), and the next publish declares the topic's queues and
bindings again before it retries, so the system heals without waiting for the consumer to reconnect.
A topic nobody subscribes to through this bus (`human-review`) has no queue to declare: its returned
events are dropped, as on any pub/sub topic without subscribers.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote, urlsplit

import pika
import pika.exceptions

from daca_kit.adapters.network import (
    chain_text,
    elapsed_ms,
    first_line,
    looks_tls,
    reach,
    unreachable,
    url_secrets,
)
from daca_kit.core.models import Backend, RoundTrip
from daca_kit.core.ports import Handler
from daca_kit.errors import AUTH, ERROR, MISSING, TLS, BusError

log = logging.getLogger(__name__)


def amqp_address(url: str) -> tuple[str, int, str]:
    """(host, port, vhost) of an AMQP URL, with the default port of its scheme."""
    parts = urlsplit(url)
    port = parts.port or (5671 if parts.scheme == "amqps" else 5672)
    vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    return parts.hostname or "localhost", port, vhost


def describe_amqp_url(url: str) -> str:
    host, port, _vhost = amqp_address(url)
    parts = urlsplit(url)
    return f"{parts.scheme}://{host}:{port}{parts.path or '/'}"


def declare_topic(channel: Any, topic: str, queues: Iterable[str] = ()) -> None:
    """Declares the topic's durable fanout exchange, and each queue (durable, classic) bound to it.

    Publisher and consumers declare the same way, so either may (re)create what the other expects.
    """
    channel.exchange_declare(exchange=topic, exchange_type="fanout", durable=True)
    for queue in queues:
        channel.queue_declare(queue=queue, durable=True, arguments={"x-queue-type": "classic"})
        channel.queue_bind(queue=queue, exchange=topic)


def explain_amqp_error(exc: BaseException, url: str, *, connecting: bool = False) -> BusError:
    """The BusError for a pika failure: a sentence naming the setting to fix, and its `problem`.

    `connecting`: the failure came while opening the connection, which over amqps:// is the TLS handshake.
    """
    host, port, vhost = amqp_address(url)
    where = f"RabbitMQ at {host}:{port}"
    text = chain_text(exc)
    auth_errors = (pika.exceptions.ProbableAuthenticationError, pika.exceptions.AuthenticationError)
    if isinstance(exc, auth_errors) or "access_refused" in text:
        return BusError(f"{where} refused the user name or password: check them in AMQP_URL.", problem=AUTH)
    if isinstance(exc, pika.exceptions.ProbableAccessDeniedError) or "not_allowed" in text:
        return BusError(
            f"{where} refused the virtual host '{vhost}': it does not exist or the user may not use it; "
            "check the vhost at the end of AMQP_URL (CloudAMQP's vhost is the user name).",
            problem=MISSING,
        )
    found = unreachable(exc, host, port, setting="AMQP_URL", what="the RabbitMQ broker", error=BusError)
    if found is not None:
        return found
    # A connection over amqps:// that fails without a word is most likely TLS spoken to a plain port
    # (a timeout is more likely a firewall: that one stays unclassified).
    timed_out = "timed out" in text or "timeout" in text
    if looks_tls(text) or (connecting and url.lower().startswith("amqps") and not timed_out):
        return BusError(
            f"The TLS handshake with {where} failed: amqps:// needs the broker's TLS port (5671 on CloudAMQP), "
            "amqp:// the plain one (5672); check AMQP_URL.",
            problem=TLS,
        )
    return BusError(
        f"{where} failed ({type(exc).__name__}: {first_line(exc, url_secrets(url))}): check AMQP_URL.",
        problem=ERROR,
    )


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
        self._declared: set[str] = set()
        self._queues: dict[str, set[str]] = {}  # topic -> the queues of this bus's subscriptions
        self._unsubscribed_noted: set[str] = set()
        self._consumers: list[_Consumer] = []
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
        if conn is not None and conn.is_open:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail again
                pass

    def publish(self, topic: str, event: dict[str, Any]) -> None:
        body = json.dumps(event).encode()
        props = pika.BasicProperties(
            content_type="application/cloudevents+json",
            delivery_mode=pika.DeliveryMode.Persistent,
            message_id=str(event.get("id", "")),
            type=str(event.get("type", "")),
        )
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

    def _unroutable(self, topic: str, exc: pika.exceptions.UnroutableError) -> None:
        """A message the broker returned: no queue is bound to the topic's exchange."""
        queues = sorted(self._queues.get(topic, ()))
        if not queues:
            if topic not in self._unsubscribed_noted:
                self._unsubscribed_noted.add(topic)
                log.info("no queue is bound to exchange '%s': nobody subscribes to its events", topic)
            return
        self._declared.discard(topic)  # the next attempt declares the queues and bindings again
        raise BusError(
            f"RabbitMQ routed the {topic} event to no queue (queue {', '.join(queues)} was deleted or not "
            "declared yet); it stays in the outbox and the next attempt declares the queue again"
        ) from exc

    # -- consuming -----------------------------------------------------------------------------
    def subscribe(self, topic: str, handler: Handler, *, consumer: str) -> None:
        queue = f"{consumer}-{topic}"
        with self._pub_lock:
            self._queues.setdefault(topic, set()).add(queue)
            self._declared.discard(topic)  # the next publish declares the new queue too
        worker = _Consumer(self, topic, handler, queue)
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


class _Consumer(threading.Thread):
    def __init__(self, bus: PikaEventBus, topic: str, handler: Handler, queue: str) -> None:
        super().__init__(name=f"amqp-consumer-{queue}", daemon=True)
        self.bus = bus
        self.topic = topic
        self.handler = handler
        self.queue = queue
        self.ready = threading.Event()
        self._conn: pika.BlockingConnection | None = None
        self._channel: Any = None
        self._stopping = threading.Event()

    def run(self) -> None:
        delay = self.bus.reconnect_min
        while not self._stopping.is_set():
            try:
                self._conn = pika.BlockingConnection(self.bus._params())
                channel = self._conn.channel()
                self._channel = channel
                declare_topic(channel, self.topic, [self.queue])
                channel.basic_qos(prefetch_count=self.bus.prefetch)
                channel.basic_consume(queue=self.queue, on_message_callback=self._on_message, auto_ack=False)
                self.ready.set()
                delay = self.bus.reconnect_min
                log.info("consuming %s", self.queue)
                channel.start_consuming()
            except Exception as exc:  # noqa: BLE001 - the consumer must outlive any broker failure
                if self._stopping.is_set():
                    break
                log.warning(
                    "consumer %s lost the broker (%s); reconnecting in %.1fs",
                    self.queue,
                    explain_amqp_error(exc, self.bus.url),
                    delay,
                )
            finally:
                self._close_conn()
            if self._stopping.wait(delay):
                break
            delay = min(delay * 2, self.bus.reconnect_max)

    def _on_message(self, channel: Any, method: Any, _props: Any, body: bytes) -> None:
        try:
            event = json.loads(body)
        except ValueError:
            log.error("dropping a malformed message on %s", self.queue)
            channel.basic_nack(delivery_tag=method.delivery_tag, requeue=False)
            return
        try:
            self.handler(event)
        except Exception as exc:  # noqa: BLE001 - a failed handler means "deliver again"
            log.warning(
                "handler for %s failed on event %s (%s); it will be redelivered",
                self.queue,
                event.get("id"),
                exc,
            )
            # Back off a little so a failing backend is not hammered by redeliveries.
            self._stopping.wait(0.5)
            channel.basic_nack(delivery_tag=method.delivery_tag, requeue=True)
            return
        channel.basic_ack(delivery_tag=method.delivery_tag)
        self.bus.delivered += 1

    def _close_conn(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and conn.is_open:
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass

    def stop(self) -> None:
        self._stopping.set()
        conn, channel = self._conn, self._channel
        if conn is not None and channel is not None:
            try:
                conn.add_callback_threadsafe(channel.stop_consuming)
            except Exception:  # noqa: BLE001 - already closed
                pass
