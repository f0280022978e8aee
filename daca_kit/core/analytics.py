"""The analytics consumer: turns `MessageSent` events into per-user message counts.

    bus.subscribe("messages", AnalyticsConsumer(counters), consumer="daca-analytics")

Idempotent: the count goes up once per event id, however often the broker delivers it.
"""

from __future__ import annotations

import logging
from typing import Any

from daca_kit.core.ports import Counters

log = logging.getLogger(__name__)

CONSUMER = "daca-analytics"
COUNT_KEY = "message_count:{}"  # the tutorial's key, on every counters backend that has keys


class AnalyticsConsumer:
    """The MessageSent handler the kit subscribes on topic `messages`."""

    def __init__(self, counters: Counters) -> None:
        self.counters = counters
        self.handled = 0

    def __call__(self, event: dict[str, Any]) -> None:
        counted = _counted(event)
        if counted is None:
            return
        count = self.counters.increment_once(*counted)
        self.handled += 1
        log.debug("message_count:%s is %d", counted[0], count)

    def handle_many(self, events: list[dict[str, Any]]) -> None:
        """Counts the events a bus received together with one counters call (`BatchHandler`)."""
        counted = [found for found in map(_counted, events) if found is not None]
        if counted:
            self.counters.increment_many(counted)
            self.handled += len(counted)


def _counted(event: dict[str, Any]) -> tuple[str, str] | None:
    """(user_id, event id) of a MessageSent event; None for any other event."""
    if event.get("type") != "MessageSent":
        return None
    data = event.get("data") or {}
    user_id = data.get("user_id")
    if not user_id or not event.get("id"):
        log.error("ignoring a MessageSent event without user_id or id")
        return None
    return str(user_id), str(event["id"])
