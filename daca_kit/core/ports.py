"""Ports: the small interfaces the kit's core depends on. Adapters in `daca_kit.adapters` implement them.

Each port has an embedded default and one or more real adapters, chosen in `daca_kit.bootstrap`;
fakes for tests live in `tests/support/fakes.py` and implement the same protocols.

Every adapter of a service meters itself: `calls` counts its backend calls so far (SQL statements,
Redis commands, broker publishes, model requests), which the usage meter and the benchmark read, and
`backend` describes it (`daca_kit.core.models.Backend`). Failures leave as the exceptions of
`daca_kit.errors`, each a sentence naming the setting to fix.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from daca_kit.core.models import Backend, HistoryTurn, InstanceState, Reply, ReplyRequest, RoundTrip

Handler = Callable[[dict[str, Any]], None]


@runtime_checkable
class BatchHandler(Protocol):
    """A `Handler` that also takes the events a bus received together in one call (one backend call for
    the lot); raising leaves them all for redelivery. A bus that reads in batches uses `handle_many`."""

    def __call__(self, event: dict[str, Any]) -> None: ...

    def handle_many(self, events: list[dict[str, Any]]) -> None: ...


Event = tuple[str, str, dict[str, Any]]  # (topic, event id, CloudEvent) written with the row it describes


class Metered(Protocol):
    """What every service adapter tells about itself."""

    backend: Backend

    @property
    def calls(self) -> int:
        """Backend calls so far (statements, commands, publishes, requests)."""
        ...


class Checkable(Metered, Protocol):
    """A real service's adapter that proves, with one harmless round trip, that its service answers.

        trip = RedisCounters.from_url(url, timeout=3.0).check()   # what `daca-kit doctor` runs

    The check goes through the adapter's own client, within the timeout the adapter was built with.
    It first resolves the host and opens the port, then lets the driver speak, and raises the adapter's
    `BackendError` (the same sentence the running app shows) with `problem` saying which step failed.
    """

    def check(self) -> RoundTrip: ...

    def close(self) -> None: ...


@runtime_checkable
class ReplyModel(Metered, Protocol):
    """Generates a reply. Raises `ModelError` with a sentence naming the setting to fix."""

    name: str

    def generate(self, request: ReplyRequest) -> Reply: ...

    def ping(self) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class StreamingReplyModel(ReplyModel, Protocol):
    """A reply model that can hand on its reply as it is written (Gemini, offline)."""

    def stream(self, request: ReplyRequest, on_chunk: Callable[[str], None]) -> Reply:
        """Calls `on_chunk(text)` for each piece as it arrives, then returns the whole reply (what
        `generate` would return). Raises `ModelError`; a failure after the first piece is not retried."""
        ...


class ReplyChannel(Protocol):
    """The side channel that carries a reply's pieces, keyed by the turn's instance id, from the model
    activity to whoever waits for the turn (a streaming request, a Chat tab session).

    It is not the record: the workflow records the whole reply as the activity's result, so a listener
    that leaves early, or pieces nobody hears, change nothing about the turn. The in-process channel
    reaches listeners in the process that runs the model activity, which on the local runtime is the
    process that started a turn (a turn that needs no reviewer runs in its caller's thread).
    """

    def open(self, instance_id: str, listener: Callable[[str], None]) -> None: ...

    def close(self, instance_id: str) -> None: ...

    def listening(self, instance_id: str) -> bool: ...

    def publish(self, instance_id: str, text: str) -> None:
        """Hands `text` to the instance's listener, if one is open (otherwise it is dropped)."""
        ...


@runtime_checkable
class Counters(Metered, Protocol):
    """Per-user message counters (key `message_count:{user_id}` on Redis). Raises CountersError."""

    def get(self, user_id: str) -> int: ...

    def set(self, user_id: str, value: int) -> None: ...

    def increment_once(self, user_id: str, event_id: str) -> int:
        """Adds one unless `event_id` was counted before; returns the count after."""
        ...

    def increment_many(self, events: Sequence[tuple[str, str]]) -> int:
        """`increment_once` for each (user_id, event_id), in one backend call where the backend allows
        (one command on Redis); returns how many were counted now (not before). After a failure any of them
        may be counted again: the ones that were counted are then skipped."""
        ...

    def reset(self) -> int:
        """Resets every user's count; returns how many counters were cleared. Idempotent."""
        ...

    def all(self, limit: int = 1000) -> dict[str, int]:
        """Every user's count (at most `limit` users), for the Usage tab."""
        ...

    def ping(self) -> None: ...

    def close(self) -> None: ...


class RateWindows(Protocol):
    """Fixed rate-limit windows shared by every process (Redis and Upstash). Raises CountersError."""

    def hit(self, key: str, limit: int, window: int) -> tuple[bool, float]:
        """Counts a hit; returns (allowed, retry_after_seconds)."""
        ...

    def admit(self, user_id: str, limit: int, window: int) -> tuple[bool, float, int]:
        """The user's rate limit and message count in one call: (allowed, retry_after_seconds, count)."""
        ...


@runtime_checkable
class EventBus(Metered, Protocol):
    """Publishes CloudEvents-shaped dicts on topics and delivers them to subscribers.

    `publish` returns only when the broker has confirmed the event; raises BusError otherwise.
    A handler that raises leaves the event for redelivery; handlers must be idempotent.
    """

    def publish(self, topic: str, event: dict[str, Any]) -> None: ...

    def subscribe(self, topic: str, handler: Handler, *, consumer: str, consume: bool = True) -> None:
        """Hands `topic`'s events to `handler` as `consumer`. `consume=False`: another process of the app
        handles them; this bus still routes them to `consumer`'s queue (a broker's), and handles none."""
        ...

    def ping(self) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class BatchPublisher(Protocol):
    """A bus that confirms a batch of events with one round trip to its broker (the outbox relay uses it).

    `publish_many` returns the positions of the events the broker refused one by one (a broker that
    reports unroutable events): those are not published and stay in the outbox; it raises BusError when
    the batch failed as a whole (none of it may be deleted from the outbox)."""

    def publish_many(self, events: list[tuple[str, dict[str, Any]]]) -> list[int]: ...


class PushedEvents(Protocol):
    """A bus whose broker pushes events to the app over HTTP (Dapr pub/sub): the web layer hands them on."""

    def deliver(self, topic: str, event: dict[str, Any]) -> str:
        """Runs the topic's handlers: "SUCCESS", "RETRY" (deliver again later) or "DROP"."""
        ...


# -- storage, one protocol per aggregate ----------------------------------------------------------------


class Database(Metered, Protocol):
    """The SQL database under the stores: tables, a health probe, and its connections."""

    def create_all(self) -> None: ...

    def ping(self) -> None: ...

    def close(self) -> None: ...


class ConversationStore(Protocol):
    """Finished turns (table `conversation`)."""

    def history(self, user_id: str, limit: int) -> list[HistoryTurn]:
        """The last `limit` turns, oldest first."""
        ...

    def conversations(self, user_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """Stored turns, newest first."""
        ...

    def turn_by_instance(self, instance_id: str) -> dict[str, Any] | None: ...

    def store_turn(
        self,
        *,
        instance_id: str,
        user_id: str,
        message: str,
        reply: str,
        timestamp: datetime,
        events: list[Event],
    ) -> bool:
        """Stores a turn and its events in one transaction; False when this instance's turn was stored before."""
        ...


class ReviewStore(Protocol):
    """Replies held for a human; a review leaves `pending` exactly once."""

    def create_review(
        self,
        *,
        instance_id: str,
        user_id: str,
        message: str,
        proposed_reply: str,
        created_at: datetime,
        events: list[Event],
    ) -> bool: ...

    def pending_reviews(self, limit: int = 200) -> list[dict[str, Any]]: ...

    def pending_count(self) -> int:
        """How many reviews are pending (the cap on waiting messages reads it)."""
        ...

    def decided_reviews(self, limit: int = 50) -> list[dict[str, Any]]: ...

    def get_review(self, instance_id: str) -> dict[str, Any] | None: ...

    def decide_review(
        self,
        instance_id: str,
        *,
        approved: bool,
        reply: str | None,
        reason: str | None,
        reviewer: str,
        decided_at: datetime,
        workflow_event: tuple[str, dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Decides once (NotFound, AlreadyDecided); `workflow_event` is written in the same transaction."""
        ...

    def close_review(self, instance_id: str, status: str, decided_at: datetime) -> dict[str, Any] | None:
        """Ends a pending review with `status` (None), unless a reviewer decided first: then that review."""
        ...


class OutboxStore(Protocol):
    """Events committed with their rows, waiting to be published."""

    def batch(self, limit: int = 100) -> list[dict[str, Any]]: ...

    def done(self, ids: list[int]) -> None: ...

    def publish_batch(self, limit: int, publish: Callable[[dict[str, Any]], None]) -> int:
        """Calls `publish(row)` for up to `limit` events, oldest first, that no other process is publishing,
        and deletes those published; stops at the first that raises and raises it once the rest is saved.
        Returns how many were published. With several processes each event is handed to one of them."""
        ...

    def publish_together(self, limit: int, publish_many: Callable[[list[dict[str, Any]]], list[int]]) -> int:
        """Hands up to `limit` events, oldest first, that no other process is publishing to
        `publish_many(rows)` at once; it returns the positions it could not publish, which stay, and the
        others are deleted. Returns how many were published."""
        ...

    def size(self) -> int: ...

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Calls `callback` after each commit that added events (wakes the relay)."""
        ...


class WorkflowStore(Protocol):
    """Durable state of the local runtime's workflow instances, and the inbox of events raised for
    instances of either runtime (each row: id, instance_id, name, payload, created_at)."""

    def get(self, instance_id: str) -> dict[str, Any] | None: ...

    def active(self) -> list[dict[str, Any]]: ...

    def events(self, instance_id: str) -> list[dict[str, Any]]: ...

    def add_event(self, instance_id: str, name: str, payload: dict[str, Any]) -> None: ...

    def pending_events(self, limit: int = 100) -> list[dict[str, Any]]:
        """Events of any instance still in the inbox, oldest first (a runtime that raises them elsewhere)."""
        ...

    def delete_events(self, ids: list[int]) -> None: ...

    def save(
        self, state: dict[str, Any], *, expected_version: int | None, consumed_events: list[int]
    ) -> bool:
        """Inserts or updates an instance unless someone else saved it meanwhile (False: lost the race)."""
        ...

    def claim(self, instance_id: str, owner: str, seconds: float) -> bool:
        """Leases the instance to `owner` for `seconds` unless another owner's lease runs (False)."""
        ...

    def release(self, instance_id: str, owner: str) -> None:
        """Ends `owner`'s lease on the instance (nothing when it holds none)."""
        ...


WakeUp = Callable[
    [str | None, str | None], None
]  # (instance id, its timer as ISO time); (None, None): resync


class WakeUps(Metered, Protocol):
    """Tells the other processes of one app that a workflow instance changed, so that whoever waits for it
    there (a REST wait, the Chat tab) learns at once and its timer is armed there too.

        wakeups.listen(on_change)                # on_change(instance_id, timer_iso) from other processes
        wakeups.announce(instance_id, timer_iso) # after each saved step of an instance

    A hint, never the truth: the database holds the state, and a lost announcement costs only latency.
    While the backend is unreachable `healthy` is False (waiters then re-check on their own, slowly), and
    after it reconnects the listener is called once with (None, None): re-read what may have been missed.
    `announce` never raises and never blocks for long. Channels are named per app database, so two apps on
    one Redis never wake each other.
    """

    @property
    def healthy(self) -> bool: ...

    def listen(self, callback: WakeUp) -> None: ...

    def announce(self, instance_id: str, timer: str | None) -> None: ...

    def close(self) -> None: ...


class KeyStore(Protocol):
    """Secrets the app generates once and keeps, so that every worker process and every restart uses the
    same one (the key that signs reviewer sessions). Values are never logged."""

    def get_or_create(self, name: str, make: Callable[[], str]) -> str:
        """The value stored under `name`; the first caller stores `make()` (a race keeps one value)."""
        ...


@dataclass(frozen=True)
class Stores:
    """The stores of one database, built together by the SQL adapter."""

    database: Database
    conversations: ConversationStore
    reviews: ReviewStore
    outbox: OutboxStore
    workflows: WorkflowStore
    keys: KeyStore


# -- workflows ---------------------------------------------------------------------------------------------


class WorkflowContext(Protocol):
    """What a workflow body sees: the part of Dapr's DaprWorkflowContext the kit uses."""

    @property
    def instance_id(self) -> str: ...

    @property
    def current_utc_datetime(self) -> datetime: ...

    def call_activity(self, activity: str, *, input: Any = None) -> Any: ...

    def wait_for_external_event(self, name: str) -> Any: ...

    def create_timer(self, fire_at: datetime) -> Any: ...

    def set_custom_status(self, status: str) -> None: ...


Workflow = Callable[[Any, Any], Generator[Any, Any, Any]]
Activity = Callable[[Any, Any], Any]


class WorkflowRuntime(Protocol):
    """Runs workflow definitions durably: the local runtime on the SQL database, or Dapr Workflow.

    External events (a review decision) are written to the workflow inbox (`WorkflowStore`) in the
    transaction that records what they report; `notify` then has the runtime deliver them: the local
    runtime reads its inbox itself, the Dapr runtime raises them on the engine and deletes them once
    accepted (retrying while the sidecar is down, and sweeping the inbox at start).
    """

    name: str
    backend: Backend

    def start(self) -> None: ...

    def close(self) -> None: ...

    def ping(self) -> None:
        """BackendError while the runtime cannot run turns (e.g. not yet connected to its engine)."""
        ...

    def on_change(self, listener: Callable[[InstanceState], None]) -> None: ...

    def schedule(self, name: str, instance_id: str, input: dict[str, Any]) -> InstanceState:
        """Starts an instance and returns once it ended or waits (for an event or a timer)."""
        ...

    def get(self, instance_id: str) -> InstanceState | None: ...

    def notify(self, instance_id: str) -> None:
        """Delivers the events just written to the instance's inbox (by someone else's transaction)."""
        ...

    def wait(self, instance_id: str, timeout: float) -> InstanceState | None: ...

    async def wait_async(self, instance_id: str, timeout: float) -> InstanceState | None: ...
