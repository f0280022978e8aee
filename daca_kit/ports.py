"""Ports: the small interfaces the kit's core depends on. Adapters live in `daca_kit.adapters`.

Each port has an embedded default and one or more real adapters, chosen in `daca_kit.bootstrap`.
Fakes for tests live in `tests/support/fakes.py` and implement the same protocols.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class HistoryTurn:
    """One stored turn, as given to the reply model (oldest first in a history list)."""

    message: str
    reply: str


@dataclass(frozen=True)
class ReplyRequest:
    user_id: str
    text: str
    message_count: int | None
    history: Sequence[HistoryTurn] = ()


@dataclass(frozen=True)
class Reply:
    text: str
    model: str
    offline: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class ReplyModel(Protocol):
    """Generates a reply. Raises `daca_kit.errors.ModelError` with a sentence naming the setting to fix."""

    name: str

    def generate(self, request: ReplyRequest) -> Reply: ...


@runtime_checkable
class Counters(Protocol):
    """Per-user message counters (key `message_count:{user_id}` on Redis). Raises CountersError."""

    def get(self, user_id: str) -> int: ...

    def set(self, user_id: str, value: int) -> None: ...

    def increment_once(self, user_id: str, event_id: str) -> int:
        """Adds one unless `event_id` was counted before; returns the count after."""
        ...

    def reset(self) -> int:
        """Resets every user's count; returns how many counters were cleared. Idempotent."""
        ...


@runtime_checkable
class CountersListing(Protocol):
    """Optional: counters that can list all users (for the Usage tab)."""

    def all(self, limit: int = 1000) -> dict[str, int]: ...


Handler = Callable[[dict[str, Any]], None]


@runtime_checkable
class EventBus(Protocol):
    """Publishes CloudEvents-shaped dicts on topics and delivers them to subscribers.

    `publish` returns only when the broker has confirmed the event; raises BusError otherwise.
    A handler that raises leaves the event for redelivery; handlers must be idempotent.
    """

    def publish(self, topic: str, event: dict[str, Any]) -> None: ...

    def subscribe(self, topic: str, handler: Handler, *, consumer: str) -> None: ...

    def close(self) -> None: ...
