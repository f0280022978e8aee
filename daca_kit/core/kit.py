"""The kit's service layer: everything the REST API, the Gradio UI, the CLI and the notebooks call.

    kit = bootstrap(load_settings()); kit.start()
    result = kit.chat_sync("alice", "Hello!")             # runs a turn, waits up to settings.chat_wait
    kit.reviews.decide("instance-id", approved=True, reviewer="reviewer")
    kit.close()

Built by `daca_kit.bootstrap.bootstrap`, the only place that chooses adapters; the Kit sees ports only.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from daca_kit.core.activities import TurnActivities
from daca_kit.core.admission import Admission
from daca_kit.core.analytics import CONSUMER, AnalyticsConsumer
from daca_kit.core.clock import as_utc, iso, new_id
from daca_kit.core.health import backend_health, health_warnings
from daca_kit.core.models import Backend, InstanceState, Reachability, TurnResult
from daca_kit.core.outbox import OutboxRelay
from daca_kit.core.ports import (
    Counters,
    EventBus,
    PushedEvents,
    ReplyModel,
    Stores,
    WakeUps,
    WorkflowRuntime,
)
from daca_kit.core.ratelimit import RateLimiter
from daca_kit.core.reviews import ReviewDesk
from daca_kit.core.turns import stored_turn, turn_result
from daca_kit.core.usage import usage_report
from daca_kit.core.validation import known_id, valid_user_id, validate_turn
from daca_kit.core.workflow import MESSAGES_TOPIC, WORKFLOW_NAME, is_sensitive
from daca_kit.errors import InputError, NotFound, RateLimited
from daca_kit.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Kit:
    """Wired ports plus the runtime and relay; see `bootstrap`."""

    settings: Settings
    stores: Stores
    counters: Counters
    bus: EventBus
    model: ReplyModel
    runtime: WorkflowRuntime
    limiter: RateLimiter
    activities: TurnActivities
    admission: Admission | None = None  # per-visitor limits (`submit`'s `client`); None: no such limits
    pushed_events: PushedEvents | None = None  # set when the broker pushes events over HTTP (Dapr)
    wakeups: WakeUps | None = None  # how the local runtime hears of other processes' steps (metered)
    # Probes the configured services' ports once at start (bootstrap gives it; None: nothing to probe).
    reach: Callable[[], Reachability] | None = None
    reachability: Reachability = field(default_factory=Reachability)
    relay: OutboxRelay | None = None
    consume_events: bool = True
    turns_completed: int = 0
    _started: bool = False
    _health_cache: tuple[float, dict[str, Any]] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.reviews = ReviewDesk(self.stores.reviews, self.runtime)

    @property
    def backends(self) -> dict[str, Backend]:
        """What serves each part (database, counters, events, model, workflow)."""
        return {
            "database": self.stores.database.backend,
            "counters": self.counters.backend,
            "events": self.bus.backend,
            "model": self.model.backend,
            "workflow": self.runtime.backend,
        }

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self, *, defer_runtime: bool = False) -> Kit:
        """Creates tables, starts the relay, the consumer and the workflow runtime.

        `defer_runtime=True` leaves the runtime to `start_runtime()` (Dapr mode: daprd may open its
        workflow stream only once the app's port answers, so the server starts it after binding).
        """
        if self._started:
            return self
        if self.reach is not None:
            # In the background: a port that a firewall drops costs its whole timeout, and the answer is
            # for /health and the Usage tab, not for starting.
            threading.Thread(target=self._check_reach, name="daca-reach", daemon=True).start()
        self.stores.database.create_all()
        self.runtime.on_change(self._on_change)
        # Without consume_events another process consumes (a sibling worker, on a broker): this one only
        # routes the events to the consumer's queue.
        self.bus.subscribe(
            MESSAGES_TOPIC, AnalyticsConsumer(self.counters), consumer=CONSUMER, consume=self.consume_events
        )
        if self.relay is None:
            # With other processes on the database (wake-ups not embedded), a killed one may leave events
            # committed and unpublished: sweep for them every 30 s rather than every 5 minutes.
            shared = self.wakeups is not None and not self.wakeups.backend.embedded
            self.relay = OutboxRelay(self.stores.outbox, self.bus, sweep_interval=30.0 if shared else 300.0)
        self.relay.start()
        if not defer_runtime:
            self.runtime.start()
        self._started = True
        log.info("daca_kit started: %s", ", ".join(f"{k}={v.label}" for k, v in self.backends.items()))
        return self

    def _check_reach(self) -> None:
        if self.reach is None:
            return
        found = self.reach()
        self.reachability = found
        for port in found.closed:
            log.warning("%s:%s (%s) is closed from here: %s", port.host, port.port, port.setting, port.detail)

    def start_runtime(self) -> None:
        self.runtime.start()

    def close(self) -> None:
        if not self._started:
            return
        self._started = False
        self.runtime.close()
        if self.relay is not None:
            self.relay.close()
        self.bus.close()
        self.counters.close()
        self.model.close()
        self.stores.database.close()

    def __enter__(self) -> Kit:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _on_change(self, state: InstanceState) -> None:
        if state.is_terminal and self.admission is not None:
            self.admission.release(state.instance_id)
        if state.is_terminal and (state.output or {}).get("status") == "completed":
            with self._lock:
                self.turns_completed += 1

    def on_change(self, listener: Callable[[InstanceState], None]) -> None:
        """Calls `listener(state)` after every change of a workflow instance this process observes."""
        self.runtime.on_change(listener)

    # -- chat -----------------------------------------------------------------------------------
    validate = staticmethod(validate_turn)

    def submit(
        self,
        user_id: str,
        text: str,
        *,
        metadata: dict[str, Any] | None = None,
        tags: list[str] | None = None,
        instance_id: str | None = None,
        client: str | None = None,
    ) -> TurnResult:
        """Runs a turn in the calling thread until it finishes or waits for a reviewer.

        `client` is the visitor's address, limited beside the user (see `Admission`); None for the
        operator on this machine and in-process callers, who are not.
        """
        user_id, text = validate_turn(user_id, text)
        if client is not None and self.admission is not None:
            return self.admission.run(
                client,
                is_sensitive(text, self.settings.keywords),
                lambda: self.submit(user_id, text, metadata=metadata, tags=tags, instance_id=instance_id),
            )
        allowed, retry_after, known_count = self.limiter.admit(user_id)
        if not allowed:
            raise RateLimited(
                f"Too many messages from {user_id}: the limit is {self.settings.rate_limit}. "
                f"Try again in {max(1, round(retry_after))} s.",
                retry_after=max(1, round(retry_after)),
            )
        instance_id = instance_id or new_id()
        session_id = str((metadata or {}).get("session_id") or instance_id)
        turn = {
            "user_id": user_id,
            "text": text,
            "metadata": {**(metadata or {}), "session_id": session_id},
            "tags": list(tags or []),
            "keywords": list(self.settings.keywords),
            "history_turns": self.settings.history_turns,
            "review_timeout_s": self.settings.review_timeout.total_seconds(),
        }
        if known_count is not None:
            turn["message_count"] = known_count  # read with the rate limit: saves a counters call
        state = self.runtime.schedule(WORKFLOW_NAME, instance_id, turn)
        return turn_result(state)

    def chat_sync(self, user_id: str, text: str, *, wait: float | None = None, **kwargs: Any) -> TurnResult:
        """`submit`, then wait up to `wait` seconds (default DACA_CHAT_WAIT) for a review decision."""
        result = self.submit(user_id, text, **kwargs)
        wait = self.settings.chat_wait if wait is None else wait
        if not result.finished and wait > 0:
            return self.wait_turn_sync(result.instance_id, wait) or result
        return result

    def turn(self, instance_id: str) -> TurnResult | None:
        try:
            known_id(instance_id)
        except NotFound:
            return None
        state = self.runtime.get(instance_id)
        return turn_result(state) if state else stored_turn(self.stores.conversations, instance_id)

    def wait_turn_sync(self, instance_id: str, timeout: float) -> TurnResult | None:
        state = self.runtime.wait(instance_id, timeout)
        return turn_result(state) if state else stored_turn(self.stores.conversations, instance_id)

    async def wait_turn(self, instance_id: str, timeout: float) -> TurnResult | None:
        state = await self.runtime.wait_async(instance_id, timeout)
        if state:
            return turn_result(state)
        return await asyncio.to_thread(stored_turn, self.stores.conversations, instance_id)

    # -- conversations and analytics ------------------------------------------------------------
    def conversations(self, user_id: str, limit: int = 50) -> list[dict[str, Any]]:
        valid_user_id(user_id)
        limit = max(1, min(int(limit), 500))
        return [
            {
                "id": r["id"],
                "user_id": r["user_id"],
                "message": r["message"],
                "reply": r["reply"],
                "timestamp": iso(as_utc(r["timestamp"])),
            }
            for r in self.stores.conversations.conversations(user_id, limit)
        ]

    def message_count(self, user_id: str) -> int:
        """Raises CountersError when the counters are down."""
        return self.counters.get(valid_user_id(user_id))

    def initialize_count(self, user_id: str, message_count: int) -> None:
        valid_user_id(user_id)
        if (
            not isinstance(message_count, int)
            or isinstance(message_count, bool)
            or not 0 <= message_count <= 10**9
        ):
            raise InputError("message_count must be a whole number from 0 to 1,000,000,000.")
        self.counters.set(user_id, message_count)

    def reset_counts(self) -> int:
        return self.counters.reset()

    def all_counts(self, limit: int = 1000) -> dict[str, int]:
        return self.counters.all(limit)

    # -- health and usage -----------------------------------------------------------------------
    def health(self, *, max_age: float = 15.0) -> dict[str, Any]:
        """Each backend's state; probes at most every `max_age` seconds (probes cost free-tier calls)."""
        cached = self._health_cache
        if cached and time.monotonic() - cached[0] < max_age:
            report = cached[1]
        else:
            report = backend_health(
                self.backends,
                pings={
                    "database": self.stores.database.ping,
                    "counters": self.counters.ping,
                    "workflow": self.runtime.ping,
                },
                model_error=self.activities.model_error,
                relay_error=self.relay.last_error if self.relay else None,
            )
            self._health_cache = (time.monotonic(), report)
        # Not cached: the port check finishes in the background after start.
        return {**report, "warnings": self.warnings(), "reachability": self.reachability.as_dict()}

    def warnings(self) -> list[str]:
        return health_warnings(self.settings, self.backends, self.reachability)

    def backend_calls(self) -> dict[str, int]:
        wakeups = self.wakeups.calls if self.wakeups is not None else 0
        same = self.wakeups is not None and self.wakeups.backend.kind == self.counters.backend.kind
        return {
            "database": self.stores.database.calls,
            "counters": self.counters.calls + (wakeups if same else 0),  # one Redis, one quota
            "events": self.bus.calls,
            "model": self.model.calls,
        }

    def usage(self) -> dict[str, Any]:
        return usage_report(
            self.backends,
            self.backend_calls(),
            self.turns_completed,
            gemini_requests_per_day=self.settings.gemini_requests_per_day,
        )
