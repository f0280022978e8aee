"""The kit's records: plain dataclasses that cross the ports (no technology library in sight).

    Reply(text="Hi!", model="offline", offline=True)
    Backend("postgres", "postgresql://db.example.com:5432/daca", "PostgreSQL")
    TurnResult(...).chat_body()          # the JSON of POST /chat/'s 200, built in one place

Tables live with the SQL adapter (`daca_kit.adapters.sql.tables`); API schemas with the web layer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from daca_kit.core.clock import as_utc, utcnow

# -- the reply model's input and output ---------------------------------------------------------------


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


# -- what runs each part -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Backend:
    """What serves one part of the kit, as every adapter describes itself.

    `kind` is a short fixed word (sqlite, postgres, cockroachdb, sql, redis, upstash-rest, rabbitmq,
    in-process, offline, gemini, local, dapr, dapr-state, dapr-pubsub); `label` says where, without
    credentials (it may name a host); `description` is for public pages (no host names); `embedded`
    parts run inside the app, so no free-tier quota applies to them.
    """

    kind: str
    label: str
    description: str
    embedded: bool = False

    def __str__(self) -> str:
        return self.label


@dataclass(frozen=True)
class RoundTrip:
    """What one harmless round trip to a backend found (`Checkable.check`): its time and one sentence.

    RoundTrip(latency_ms=1.4, note="Redis answered PING.")
    """

    latency_ms: float
    note: str


@dataclass(frozen=True)
class PortCheck:
    """Whether one TCP connection to `host:port` opened from this host. `detail`: open, refused, timed out, ...

    PortCheck("db.example.com", 26257, "cockroachdb", "DATABASE_URL", False, "timed out")
    """

    host: str
    port: int
    service: str
    setting: str
    open: bool
    detail: str
    latency_ms: float | None = None


@dataclass(frozen=True)
class Reachability:
    """Which configured services' ports open from where the app runs, and what to change when one is closed.

    `checked` is False until the check has run (the app runs it once, in the background, at start).
    """

    ports: tuple[PortCheck, ...] = ()
    fallbacks: tuple[str, ...] = ()
    checked: bool = False

    @property
    def closed(self) -> tuple[PortCheck, ...]:
        return tuple(p for p in self.ports if not p.open)

    def as_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "ports": [asdict(p) for p in self.ports],
            "fallbacks": list(self.fallbacks),
        }


# -- workflow instances (both runtimes) --------------------------------------------------------------

RUNNING, COMPLETED, FAILED = "RUNNING", "COMPLETED", "FAILED"


@dataclass
class InstanceState:
    """A snapshot of one workflow instance, as any runtime reports it."""

    instance_id: str
    name: str
    input: dict[str, Any]
    runtime_status: str = RUNNING
    custom_status: str | None = None
    output: dict[str, Any] | None = None
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    history: list[dict[str, Any]] = field(default_factory=list)
    timer_fire_at: datetime | None = None
    version: int | None = None  # None: not yet in the database (local runtime)

    @property
    def is_terminal(self) -> bool:
        return self.runtime_status != RUNNING

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> InstanceState:
        return cls(
            instance_id=row["instance_id"],
            name=row["name"],
            input=json.loads(row["input"]),
            runtime_status=row["runtime_status"],
            custom_status=row["custom_status"],
            output=json.loads(row["output"]) if row["output"] else None,
            created_at=as_utc(row["created_at"]),
            updated_at=as_utc(row["updated_at"]),
            history=json.loads(row["history"]),
            timer_fire_at=as_utc(row["timer_fire_at"]) if row["timer_fire_at"] else None,
            version=row["version"],
        )

    def to_row(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "name": self.name,
            "input": json.dumps(self.input),
            "history": json.dumps(self.history),
            "runtime_status": self.runtime_status,
            "custom_status": self.custom_status,
            "output": json.dumps(self.output) if self.output is not None else None,
            "timer_fire_at": self.timer_fire_at,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


# -- a chat turn as callers see it -------------------------------------------------------------------

FINISHED = ("completed", "rejected", "timed_out", "failed")


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
        return self.status in FINISHED

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def chat_body(self) -> dict[str, Any]:
        """The body of POST /chat/'s 200 (the tutorial's shape)."""
        return {
            "user_id": self.user_id,
            "reply": self.reply,
            "metadata": {
                "timestamp": self.timestamp,
                "session_id": self.session_id,
                "instance_id": self.instance_id,
                "status": self.status,
            },
        }

    def status_body(self) -> dict[str, Any]:
        """Where the turn stands: GET /chat/{id}, the UI's API and the waiting answers (reply once finished)."""
        return {
            "instance_id": self.instance_id,
            "user_id": self.user_id,
            "status": self.status,
            "reply": self.reply if self.finished else None,
            "error": self.error,
            "timestamp": self.timestamp,
        }
