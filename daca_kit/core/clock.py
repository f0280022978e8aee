"""Time and ids, kept out of workflow bodies (a workflow reads time from its context)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime


def utcnow() -> datetime:
    """Aware UTC now (tables store time-zone-aware UTC)."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """A stored datetime as aware UTC (SQLite hands back naive values)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def iso(value: datetime | None) -> str | None:
    """ISO 8601 with a Z, for API responses."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="milliseconds") + "Z"


def parse_iso(text: str) -> datetime:
    """The inverse of `iso` (a trailing Z or an offset), as aware UTC; ValueError when it is not a time."""
    return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


def new_id() -> str:
    return uuid.uuid4().hex
