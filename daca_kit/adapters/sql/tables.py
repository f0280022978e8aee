"""The kit's tables (SQLModel). Table and column names of `conversation` are the tutorial's."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, SQLModel


class Conversation(SQLModel, table=True):
    """One finished chat turn. `instance_id` makes storing a turn idempotent on workflow replay."""

    __tablename__ = "conversation"
    __table_args__ = (Index("ix_conversation_user_id_id", "user_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(max_length=64)
    message: str = Field(sa_column=Column(Text, nullable=False))
    reply: str = Field(sa_column=Column(Text, nullable=False))
    timestamp: datetime
    instance_id: str | None = Field(default=None, max_length=64, unique=True)


class Review(SQLModel, table=True):
    """A reply held for a human; decided once (status leaves `pending` exactly once)."""

    __tablename__ = "review"
    __table_args__ = (Index("ix_review_status_created", "status", "created_at"),)

    instance_id: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(max_length=64, index=True)
    message: str = Field(sa_column=Column(Text, nullable=False))
    proposed_reply: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="pending", max_length=16)
    created_at: datetime
    decided_at: datetime | None = None
    decided_by: str | None = Field(default=None, max_length=64)
    final_reply: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    edited: bool = False
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class OutboxEvent(SQLModel, table=True):
    """An event committed with the row it describes; the relay publishes and deletes it."""

    __tablename__ = "outbox"

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=64, unique=True)
    topic: str = Field(max_length=64)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime
    attempts: int = 0


class WorkflowInstance(SQLModel, table=True):
    """Durable state of one workflow run on the local runtime: its input and its replay history."""

    __tablename__ = "workflow_instance"
    __table_args__ = (Index("ix_workflow_instance_runtime_status", "runtime_status"),)

    instance_id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=64)
    input: str = Field(sa_column=Column(Text, nullable=False))
    history: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    runtime_status: str = Field(default="RUNNING", max_length=16)
    custom_status: str | None = Field(default=None, max_length=32)
    output: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    timer_fire_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    version: int = 0


class WorkflowEvent(SQLModel, table=True):
    """An external event raised for a workflow instance and not yet consumed by it."""

    __tablename__ = "workflow_event"

    id: int | None = Field(default=None, primary_key=True)
    instance_id: str = Field(max_length=64, index=True)
    name: str = Field(max_length=64)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime


class WorkflowLease(SQLModel, table=True):
    """Which process is advancing an instance right now (until `expires_at`), so that N processes run each
    step once: a decision or a due timer seen by several resumes the instance in one of them."""

    __tablename__ = "workflow_lease"

    instance_id: str = Field(primary_key=True, max_length=64)
    owner: str = Field(max_length=64)
    expires_at: datetime


class MessageCounter(SQLModel, table=True):
    """Embedded analytics counter (the Redis key `message_count:{user_id}` when Redis is configured)."""

    __tablename__ = "message_counter"

    user_id: str = Field(primary_key=True, max_length=64)
    message_count: int = 0


class ProcessedEvent(SQLModel, table=True):
    """Event ids already counted, so a redelivered event does not count twice."""

    __tablename__ = "processed_event"

    event_id: str = Field(primary_key=True, max_length=64)
    processed_at: datetime


class AppKey(SQLModel, table=True):
    """A secret generated once and shared by every process (the reviewer session signing key)."""

    __tablename__ = "app_key"

    name: str = Field(primary_key=True, max_length=64)
    value: str = Field(sa_column=Column(Text, nullable=False), repr=False)
    created_at: datetime


conversation_t = Conversation.__table__  # type: ignore[attr-defined]
review_t = Review.__table__  # type: ignore[attr-defined]
outbox_t = OutboxEvent.__table__  # type: ignore[attr-defined]
instance_t = WorkflowInstance.__table__  # type: ignore[attr-defined]
wfevent_t = WorkflowEvent.__table__  # type: ignore[attr-defined]
lease_t = WorkflowLease.__table__  # type: ignore[attr-defined]
counter_t = MessageCounter.__table__  # type: ignore[attr-defined]
processed_t = ProcessedEvent.__table__  # type: ignore[attr-defined]
key_t = AppKey.__table__  # type: ignore[attr-defined]
