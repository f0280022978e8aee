"""The thread that consumes one durable queue of the bus: manual acks, bounded prefetch, a failed
handler's event delivered again, reconnection with backoff after the broker or the network drops.

A `BatchHandler` (the analytics consumer) gets every delivery that arrived together in one call, and
they are acknowledged with one frame: under load a turn's event then costs a fraction of a counters
command and of an ack, at no extra delay (the batch is what had already arrived, never waited for).

    worker = QueueConsumer(bus, "messages", handler, "daca-analytics-messages"); worker.start()
"""

from __future__ import annotations

import json
import logging
import threading
from typing import TYPE_CHECKING, Any

import pika

from daca_kit.adapters.rabbitmq.topology import declare_topic, explain_amqp_error
from daca_kit.core.ports import BatchHandler, Handler

if TYPE_CHECKING:
    from daca_kit.adapters.rabbitmq.bus import PikaEventBus

log = logging.getLogger(__name__)


class QueueConsumer(threading.Thread):
    """Reads queue `queue` (bound to exchange `topic`) and hands each event to `handler`."""

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
        self._batch: list[tuple[int, dict[str, Any]]] = []  # (delivery tag, event) received, not handled
        self._many = handler if isinstance(handler, BatchHandler) else None

    def run(self) -> None:
        delay = self.bus.reconnect_min
        while not self._stopping.is_set():
            try:
                self._conn = pika.BlockingConnection(self.bus._params())
                channel = self._conn.channel()
                self._channel = channel
                declare_topic(channel, self.topic, [self.queue])
                channel.basic_qos(prefetch_count=self.bus.prefetch)
                self._batch.clear()
                on_message = self._on_message if self._many is None else self._on_delivery
                channel.basic_consume(queue=self.queue, on_message_callback=on_message, auto_ack=False)
                self.ready.set()
                delay = self.bus.reconnect_min
                log.info("consuming %s", self.queue)
                if self._many is not None:
                    self._consume_batches(self._conn, channel, self._many)
                else:
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

    def _consume_batches(self, conn: pika.BlockingConnection, channel: Any, handler: BatchHandler) -> None:
        """Until `stop`, or until the broker cancels the consumer (its queue was deleted: the caller then
        connects again, which declares it again): waits for deliveries, then hands what arrived at once."""
        while not self._stopping.is_set() and channel.consumer_tags:
            conn.process_data_events(time_limit=1.0)  # returns once deliveries were dispatched
            if self._batch:
                self._handle_batch(channel, handler)

    def _on_delivery(self, channel: Any, method: Any, _props: Any, body: bytes) -> None:
        try:
            self._batch.append((method.delivery_tag, json.loads(body)))
        except ValueError:
            log.error("dropping a malformed message on %s", self.queue)
            channel.basic_nack(delivery_tag=method.delivery_tag, requeue=False)

    def _handle_batch(self, channel: Any, handler: BatchHandler) -> None:
        batch, self._batch = self._batch, []
        last = batch[-1][0]
        try:
            handler.handle_many([event for _, event in batch])
        except Exception as exc:  # noqa: BLE001 - a failed handler means "deliver again"
            log.warning(
                "handler for %s failed on %d event(s) (%s); they will be redelivered",
                self.queue,
                len(batch),
                exc,
            )
            self._stopping.wait(0.5)  # a failing backend is not hammered by redeliveries
            channel.basic_nack(delivery_tag=last, multiple=True, requeue=True)
            return
        channel.basic_ack(delivery_tag=last, multiple=True)
        self.bus.delivered += len(batch)

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
            try:  # ends start_consuming, and wakes the batch loop
                conn.add_callback_threadsafe(channel.stop_consuming)
            except Exception:  # noqa: BLE001 - already closed
                pass
