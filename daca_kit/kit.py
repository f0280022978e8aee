"""The kit's service layer: everything the REST API, the Gradio UI, the CLI and the notebooks call.

    kit = bootstrap(load_settings()); kit.start()
    result = kit.chat_sync("alice", "Hello!")             # runs a turn, waits up to settings.chat_wait
    kit.decide("instance-id", approved=True, reviewer="reviewer")
    kit.close()

Built by `daca_kit.bootstrap.bootstrap`, the only place that chooses adapters.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from daca_kit.analytics import CONSUMER, AnalyticsConsumer
from daca_kit.clock import as_utc, iso, new_id, utcnow
from daca_kit.errors import BackendError, InputError, NotFound, RateLimited
from daca_kit.outbox import OutboxRelay
from daca_kit.ports import Counters, EventBus, ReplyModel
from daca_kit.ratelimit import RateLimiter
from daca_kit.runtime import InstanceState
from daca_kit.settings import Settings
from daca_kit.workflow import MESSAGES_TOPIC, REVIEW_EVENT, WORKFLOW_NAME

log = logging.getLogger(__name__)

USER_ID = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
INSTANCE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
MAX_TEXT = 4000


@dataclass
class TurnResult:
    """Where a chat turn stands. `status`: running, pending_review, completed, rejected, timed_out, failed."""

    instance_id: str
    user_id: str
    status: str
    reply: str | None = None
    error: str | None = None
    timestamp: str | None = None
    session_id: str | None = None
    message_count: int | None = None
    model: str | None = None
    offline: bool = False
    review: dict[str, Any] | None = None
    created_at: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "rejected", "timed_out", "failed")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Kit:
    """Wired ports plus the runtime and relay; see `bootstrap`."""

    settings: Settings
    store: Any
    counters: Counters
    bus: EventBus
    model: ReplyModel
    runtime: Any
    limiter: RateLimiter
    backends: dict[str, str]
    relay: OutboxRelay | None = None
    activities: Any = None
    consume_events: bool = True
    turns_completed: int = 0
    _started: bool = False
    _health_cache: tuple[float, dict[str, Any]] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self, *, defer_runtime: bool = False) -> Kit:
        """Creates tables, starts the relay, the consumer and the workflow runtime.

        `defer_runtime=True` leaves the runtime to `start_runtime()` (Dapr mode: daprd may open its
        workflow stream only once the app's port answers, so the server starts it after binding).
        """
        if self._started:
            return self
        self.store.create_all()
        self.runtime.on_change(self._on_change)
        if self.consume_events:
            self.bus.subscribe(MESSAGES_TOPIC, AnalyticsConsumer(self.counters), consumer=CONSUMER)
        if self.relay is None:
            self.relay = OutboxRelay(self.store, self.bus)
        self.relay.start()
        if not defer_runtime:
            self.runtime.start()
        self._started = True
        log.info("daca_kit started: %s", ", ".join(f"{k}={v}" for k, v in self.backends.items()))
        return self

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
        for part in (self.counters, self.model):
            close = getattr(part, "close", None)
            if callable(close):
                close()
        self.store.close()

    def __enter__(self) -> Kit:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _on_change(self, state: InstanceState) -> None:
        if state.is_terminal and (state.output or {}).get("status") == "completed":
            with self._lock:
                self.turns_completed += 1

    # -- chat -----------------------------------------------------------------------------------
    @staticmethod
    def validate(user_id: Any, text: Any) -> tuple[str, str]:
        """Returns (user_id, text) or raises InputError with a sentence saying what is wrong."""
        if not isinstance(user_id, str) or not USER_ID.match(user_id):
            raise InputError("user_id must be 1 to 64 characters of letters, digits, '_', '.', '@' or '-'.")
        if not isinstance(text, str) or not text.strip():
            raise InputError("text must not be empty.")
        if len(text) > MAX_TEXT:
            raise InputError(f"text is {len(text)} characters long; the limit is {MAX_TEXT}.")
        check_storable("text", text)
        return user_id, text

    def submit(
        self,
        user_id: str,
        text: str,
        *,
        metadata: dict[str, Any] | None = None,
        tags: list[str] | None = None,
        instance_id: str | None = None,
    ) -> TurnResult:
        """Runs a turn in the calling thread until it finishes or waits for a reviewer."""
        user_id, text = self.validate(user_id, text)
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
        return self._result(state)

    def chat_sync(self, user_id: str, text: str, *, wait: float | None = None, **kwargs: Any) -> TurnResult:
        """`submit`, then wait up to `wait` seconds (default DACA_CHAT_WAIT) for a review decision."""
        result = self.submit(user_id, text, **kwargs)
        wait = self.settings.chat_wait if wait is None else wait
        if not result.finished and wait > 0:
            return self.wait_turn_sync(result.instance_id, wait) or result
        return result

    def turn(self, instance_id: str) -> TurnResult | None:
        if not isinstance(instance_id, str) or not INSTANCE_ID.match(instance_id):
            return None
        state = self.runtime.get(instance_id)
        return self._result(state) if state else self._stored_turn(instance_id)

    def wait_turn_sync(self, instance_id: str, timeout: float) -> TurnResult | None:
        state = self.runtime.wait(instance_id, timeout)
        return self._result(state) if state else self._stored_turn(instance_id)

    async def wait_turn(self, instance_id: str, timeout: float) -> TurnResult | None:
        state = await self.runtime.wait_async(instance_id, timeout)
        if state:
            return self._result(state)
        return await asyncio.to_thread(self._stored_turn, instance_id)

    def _stored_turn(self, instance_id: str) -> TurnResult | None:
        """A turn that completed without waiting is kept only as its `conversation` row."""
        row = self.store.turn_by_instance(instance_id)
        if row is None:
            return None
        return TurnResult(
            instance_id=instance_id,
            user_id=row["user_id"],
            status="completed",
            reply=row["reply"],
            timestamp=iso(as_utc(row["timestamp"])),
        )

    def _result(self, state: InstanceState) -> TurnResult:
        output = state.output or {}
        turn_input = state.input or {}
        if state.is_terminal:
            status = output.get("status") or ("failed" if state.runtime_status == "FAILED" else "completed")
        else:
            status = "pending_review" if state.custom_status == "pending_review" else "running"
        return TurnResult(
            instance_id=state.instance_id,
            user_id=turn_input.get("user_id", ""),
            status=status,
            reply=output.get("reply"),
            error=output.get("error"),
            timestamp=output.get("timestamp"),
            session_id=(turn_input.get("metadata") or {}).get("session_id"),
            message_count=output.get("message_count"),
            model=output.get("model"),
            offline=bool(output.get("offline")),
            review=output.get("review"),
            created_at=iso(as_utc(state.created_at)),
        )

    # -- reviews --------------------------------------------------------------------------------
    def pending_reviews(self, limit: int = 200) -> list[dict[str, Any]]:
        now = utcnow()
        rows = self.store.pending_reviews(limit)
        return [
            {
                "instance_id": r["instance_id"],
                "user_id": r["user_id"],
                "message": r["message"],
                "proposed_reply": r["proposed_reply"],
                "created_at": iso(as_utc(r["created_at"])),
                "waiting_seconds": max(0, int((now - as_utc(r["created_at"])).total_seconds())),
            }
            for r in rows
        ]

    def decided_reviews(self, limit: int = 50) -> list[dict[str, Any]]:
        return [_public_review(r) for r in self.store.decided_reviews(limit)]

    def review(self, instance_id: str) -> dict[str, Any]:
        row = self.store.get_review(known_id(instance_id))
        if row is None:
            raise NotFound(f"No review with id '{instance_id}'.")
        return _public_review(row)

    def decide(
        self,
        instance_id: str,
        *,
        approved: bool,
        reply: str | None = None,
        reason: str | None = None,
        reviewer: str = "reviewer",
    ) -> dict[str, Any]:
        """Decides a pending review once and resumes its turn. Raises NotFound or AlreadyDecided."""
        known_id(instance_id)
        for name, value in (("reply", reply), ("reason", reason)):
            if value is not None:
                check_storable(name, value)
        if reply is not None and len(reply) > MAX_TEXT:
            raise InputError(f"reply is {len(reply)} characters long; the limit is {MAX_TEXT}.")
        if reason is not None and len(reason) > 1000:
            raise InputError("reason is longer than 1,000 characters.")
        reply = reply if reply and reply.strip() else None
        now = utcnow()
        payload = {"approved": bool(approved), "reply": reply, "reason": reason, "reviewer": reviewer}
        # On the local runtime the resuming event is written in the decision's own transaction.
        in_store = bool(getattr(self.runtime, "decisions_in_store", False))
        row = self.store.decide_review(
            instance_id,
            approved=bool(approved),
            reply=reply,
            reason=reason,
            reviewer=reviewer,
            decided_at=now,
            workflow_event=(REVIEW_EVENT, payload) if in_store else None,
        )
        if in_store:
            self.runtime.notify(instance_id)
        else:
            self.runtime.raise_event(
                instance_id, REVIEW_EVENT, {**payload, "decided_at": iso(now), "edited": bool(row["edited"])}
            )
        log.info("review %s %s by %s", instance_id, "approved" if approved else "rejected", reviewer)
        return _public_review(row)

    # -- conversations and analytics ------------------------------------------------------------
    def conversations(self, user_id: str, limit: int = 50) -> list[dict[str, Any]]:
        self.validate(user_id, "x")
        limit = max(1, min(int(limit), 500))
        return [
            {
                "id": r["id"],
                "user_id": r["user_id"],
                "message": r["message"],
                "reply": r["reply"],
                "timestamp": iso(as_utc(r["timestamp"])),
            }
            for r in self.store.conversations(user_id, limit)
        ]

    def message_count(self, user_id: str) -> int:
        """Raises CountersError when the counters are down."""
        self.validate(user_id, "x")
        return self.counters.get(user_id)

    def initialize_count(self, user_id: str, message_count: int) -> None:
        self.validate(user_id, "x")
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
        listing = getattr(self.counters, "all", None)
        return listing(limit) if callable(listing) else {}

    # -- health and usage -----------------------------------------------------------------------
    def health(self, *, max_age: float = 15.0) -> dict[str, Any]:
        """Each backend's state; probes at most every `max_age` seconds (probes cost free-tier calls)."""
        cached = self._health_cache
        if cached and time.monotonic() - cached[0] < max_age:
            return cached[1]
        parts: dict[str, Any] = {}
        for key, probe in (
            ("database", self.store.ping),
            ("counters", getattr(self.counters, "ping", None)),
        ):
            parts[key] = _probe(self.backends.get(key, "?"), probe)
        model_error = getattr(self.activities, "model_error", None)
        parts["model"] = {
            "backend": self.backends.get("model"),
            "ok": model_error is None,
            "checked": "by the latest reply",
            **({"error": model_error} if model_error else {}),
        }
        relay_error = self.relay.last_error if self.relay else None
        parts["events"] = {
            "backend": self.backends.get("events"),
            "ok": relay_error is None,
            **({"error": relay_error} if relay_error else {}),
        }
        parts["workflow"] = {"backend": self.backends.get("workflow"), "ok": True}
        degraded = [k for k, v in parts.items() if not v.get("ok")]
        report = {
            "status": "healthy" if not degraded else "degraded",
            "degraded": degraded,
            "backends": parts,
            "warnings": self.warnings(),
        }
        self._health_cache = (time.monotonic(), report)
        return report

    def warnings(self) -> list[str]:
        notes = []
        if self.settings.on_space and self.backends.get("database") == "sqlite":
            notes.append(
                "This Space stores conversations in SQLite on disk that Spaces do not keep across restarts: "
                "set DATABASE_URL to CockroachDB or Postgres."
            )
        if getattr(self.model, "name", "") == "offline":
            notes.append("Replies come from the offline model: set GEMINI_API_KEY for Gemini replies.")
        return notes

    def backend_calls(self) -> dict[str, int]:
        return {
            "database": int(getattr(self.store, "statements", 0)),
            "counters": int(getattr(self.counters, "commands", 0)),
            "events": int(getattr(self.bus, "published", 0)),
            "model": int(getattr(self.model, "calls", 0)),
        }

    def usage(self) -> dict[str, Any]:
        from daca_kit.usage import usage_report

        return usage_report(self)


def check_storable(name: str, text: str) -> None:
    """Refuses text that no database can store: NUL characters (Postgres) and lone surrogates (UTF-8)."""
    if "\x00" in text:
        raise InputError(f"{name} must not contain NUL characters.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{name} is not valid Unicode text (it holds a lone surrogate).") from None


def known_id(instance_id: str) -> str:
    """An instance id as the kit makes them, or NotFound (odd ids never reach the database)."""
    if not isinstance(instance_id, str) or not INSTANCE_ID.match(instance_id):
        raise NotFound(f"No chat turn or review with id '{str(instance_id)[:80]}'.")
    return instance_id


def _public_review(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "instance_id": row["instance_id"],
        "user_id": row["user_id"],
        "message": row["message"],
        "proposed_reply": row["proposed_reply"],
        "status": row["status"],
        "created_at": iso(as_utc(row["created_at"])) if row.get("created_at") else None,
        "decided_at": iso(as_utc(row["decided_at"])) if row.get("decided_at") else None,
        "decided_by": row.get("decided_by"),
        "final_reply": row.get("final_reply"),
        "edited": bool(row.get("edited")),
        "reason": row.get("reason"),
    }


def _probe(backend: str, probe: Any) -> dict[str, Any]:
    if not callable(probe):
        return {"backend": backend, "ok": True}
    start = time.perf_counter()
    try:
        probe()
    except BackendError as exc:
        return {"backend": backend, "ok": False, "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - health must report, not raise
        return {"backend": backend, "ok": False, "error": f"{type(exc).__name__}"}
    return {"backend": backend, "ok": True, "latency_ms": round((time.perf_counter() - start) * 1000, 1)}
