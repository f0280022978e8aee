"""Request and response bodies of the REST API (pydantic), so `/docs` shows every schema.

Request bodies are the tutorial's; response models document what each route answers (routes on the
chat hot path build their JSON from `TurnResult` and are not validated twice).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

# -- requests -------------------------------------------------------------------------------------------


class ChatRequest(BaseModel):
    """The tutorial's message body."""

    user_id: str
    text: str
    metadata: dict[str, Any] | None = None
    tags: list[str] | None = Field(default=None, max_length=50)


class InitializeRequest(BaseModel):
    message_count: int


class DecisionRequest(BaseModel):
    approved: bool
    reply: str | None = None
    reason: str | None = None


# -- responses ------------------------------------------------------------------------------------------


class Problem(BaseModel):
    """An error: one sentence saying what is wrong and what to do."""

    detail: str


class ChatMetadata(BaseModel):
    timestamp: str | None
    session_id: str | None
    instance_id: str
    status: str


class ChatReply(BaseModel):
    """A finished turn (200): the reply, or the rejection or time-out sentence."""

    user_id: str
    reply: str | None
    metadata: ChatMetadata


class ChatPending(BaseModel):
    """A turn held for a reviewer beyond `wait` (202); poll GET /chat/{instance_id}."""

    user_id: str
    instance_id: str
    status: str


class ChatFailed(Problem):
    """The reply model failed (503); the message was not answered."""

    user_id: str
    instance_id: str
    status: str


class TurnStatus(BaseModel):
    """Where a turn stands: running, pending_review, completed, rejected, timed_out or failed."""

    instance_id: str
    user_id: str
    status: str
    reply: str | None
    error: str | None = None
    timestamp: str | None = None


class UserToken(BaseModel):
    """A user id and the token that proves it: send `Authorization: Bearer <token>` to chat as this id
    and to read its history. Keep it: it is not shown again."""

    user_id: str
    token: str


class StoredTurn(BaseModel):
    id: int
    user_id: str
    message: str
    reply: str
    timestamp: str | None


class MessageCount(BaseModel):
    """`message_count` is null and `available` false while the counters are down."""

    user_id: str
    message_count: int | None
    available: bool | None = None
    detail: str | None = None


class Initialized(BaseModel):
    status: str
    user_id: str
    message_count: int


class ResetDone(BaseModel):
    status: str
    cleared: int


class PendingReview(BaseModel):
    instance_id: str
    user_id: str
    message: str
    proposed_reply: str
    created_at: str | None
    waiting_seconds: int


class DecidedReview(BaseModel):
    instance_id: str
    user_id: str
    message: str
    proposed_reply: str
    status: str
    created_at: str | None
    decided_at: str | None
    decided_by: str | None
    final_reply: str | None
    edited: bool
    reason: str | None


class BackendHealth(BaseModel):
    backend: str
    kind: str | None = None  # sqlite, postgres, cockroachdb, redis, upstash-rest, rabbitmq, gemini, ...
    ok: bool
    error: str | None = None
    latency_ms: float | None = None
    checked: str | None = None


class PortHealth(BaseModel):
    """One configured service's port, probed from the app once at start."""

    host: str
    port: int
    service: str
    setting: str
    open: bool
    detail: str
    latency_ms: float | None = None


class ReachabilityHealth(BaseModel):
    checked: bool
    ports: list[PortHealth]
    fallbacks: list[str]


class WorkerHealth(BaseModel):
    index: int
    count: int
    pid: int


class Health(BaseModel):
    status: str
    degraded: list[str]
    backends: dict[str, BackendHealth]
    warnings: list[str]
    reachability: ReachabilityHealth
    runtime: str
    worker: WorkerHealth | None = None  # with WEB_CONCURRENCY > 1, for reviewers and the admin only


class ServiceUsage(BaseModel):
    service: str
    backend: str
    free_tier: str | None
    unit: str
    calls: int
    used: float
    per_turn: float
    quota_per_day: int | None
    percent_of_daily_quota: float | None
    turns_per_day: int | None
    where_to_check: str | None


class Usage(BaseModel):
    turns_completed: int
    services: list[ServiceUsage]
    sustainable_turns_per_day: int | None
    bottleneck: str | None
    note: str


class Delivery(BaseModel):
    """Dapr's answer contract for a pushed event."""

    status: str
