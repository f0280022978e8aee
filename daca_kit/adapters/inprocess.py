"""In-process channels: the embedded event bus, and the side channel that carries reply pieces.

    bus = InProcessEventBus(); bus.subscribe("messages", handler, consumer="analytics")
    replies = InProcessReplyChannel(); replies.open(instance_id, on_piece); ...; replies.close(instance_id)

A bus handler that raises makes `publish` raise BusError, so the outbox keeps the event and retries it.
A reply listener that raises loses only its own pieces: the turn goes on (see `ReplyChannel`).
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from daca_kit.core.models import Backend
from daca_kit.core.ports import Handler, WakeUp
from daca_kit.errors import BusError

log = logging.getLogger(__name__)


class InProcessEventBus:
    """`EventBus` inside this process (embedded)."""

    name = "in-process"
    backend = Backend("in-process", "in-process", "in-process (embedded)", embedded=True)

    def __init__(self) -> None:
        self._handlers: dict[str, list[tuple[str, Handler]]] = defaultdict(list)
        self._lock = threading.Lock()
        self.published = 0

    @property
    def calls(self) -> int:
        return self.published

    def publish(self, topic: str, event: dict[str, Any]) -> None:
        with self._lock:
            handlers = list(self._handlers.get(topic, ()))
            self.published += 1
        for consumer, handler in handlers:
            try:
                handler(event)
            except Exception as exc:  # noqa: BLE001 - any handler failure means "deliver again later"
                log.warning("consumer %s failed on %s event %s: %s", consumer, topic, event.get("id"), exc)
                raise BusError(f"Consumer '{consumer}' could not handle the {topic} event: {exc}") from exc

    def subscribe(self, topic: str, handler: Handler, *, consumer: str, consume: bool = True) -> None:
        if not consume:
            return  # no other process hears this bus
        with self._lock:
            self._handlers[topic].append((consumer, handler))

    def ping(self) -> None:
        return None

    def close(self) -> None:
        with self._lock:
            self._handlers.clear()


class InProcessWakeUps:
    """`WakeUps` for one process (embedded): there is nobody else to tell, so it is always healthy.

    With `alone=False` (several worker processes and no wake-up backend) it says it is not healthy, so
    that waiters re-check the database on their own, slowly, instead of waiting for an announcement.
    """

    name = "in-process"

    def __init__(self, *, alone: bool = True) -> None:
        self.alone = alone
        label = "in-process (one process)" if alone else "none: waiters re-check every second"
        self.backend = Backend("in-process", "in-process", label, embedded=True)

    @property
    def calls(self) -> int:
        return 0

    @property
    def healthy(self) -> bool:
        return self.alone

    def listen(self, callback: WakeUp) -> None:
        """Nothing to listen to."""

    def announce(self, instance_id: str, timer: str | None) -> None:
        """Nobody else to tell."""

    def close(self) -> None:
        """Nothing to close."""


class InProcessReplyChannel:
    """`ReplyChannel` inside this process: one listener per instance id, called in the publishing thread."""

    def __init__(self) -> None:
        self._listeners: dict[str, Callable[[str], None]] = {}
        self._lock = threading.Lock()

    def open(self, instance_id: str, listener: Callable[[str], None]) -> None:
        with self._lock:
            self._listeners[instance_id] = listener

    def close(self, instance_id: str) -> None:
        with self._lock:
            self._listeners.pop(instance_id, None)

    def listening(self, instance_id: str) -> bool:
        with self._lock:
            return instance_id in self._listeners

    def publish(self, instance_id: str, text: str) -> None:
        with self._lock:
            listener = self._listeners.get(instance_id)
        if listener is None:
            return
        try:
            listener(text)
        except Exception:  # noqa: BLE001 - a listener's failure must not fail the turn it listens to
            log.exception("reply listener of %s failed; its further pieces are dropped", instance_id)
            self.close(instance_id)
