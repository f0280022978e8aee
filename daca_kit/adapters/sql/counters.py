"""Embedded analytics counters in the same SQL database (tables `message_counter`, `processed_event`).

counters = SqlCounters(db)      # what runs when neither REDIS_URL nor Upstash is set
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, delete, select

from daca_kit.adapters.sql.database import SqlDatabase
from daca_kit.adapters.sql.tables import counter_t, processed_t
from daca_kit.core.clock import utcnow
from daca_kit.core.models import Backend
from daca_kit.errors import BackendError, CountersError


class SqlCounters:
    """`Counters` in SQL; the idempotency mark and the increment commit together."""

    name = "sql"
    backend = Backend("sql", "sql", "a table in the SQL database (embedded)", embedded=True)

    def __init__(self, db: SqlDatabase) -> None:
        self.db = db

    @property
    def calls(self) -> int:
        return 0  # its statements are the database's, metered there

    def _run(self, work: Callable[[Connection], Any], what: str) -> Any:
        try:
            return self.db.run(work, what=what)
        except BackendError as exc:
            raise CountersError(str(exc)) from exc

    def get(self, user_id: str) -> int:
        query = select(counter_t.c.message_count).where(counter_t.c.user_id == user_id)
        value = self._run(lambda c: c.execute(query).scalar(), "read the message count")
        return int(value or 0)

    def set(self, user_id: str, value: int) -> None:
        stmt = self.db.insert(counter_t).values(user_id=user_id, message_count=value)
        stmt = stmt.on_conflict_do_update(index_elements=["user_id"], set_={"message_count": value})
        self._run(lambda c: c.execute(stmt), "set the message count")

    def _count(self, conn: Connection, user_id: str, event_id: str) -> int | None:
        """Marks `event_id` and adds one for `user_id`; None when it was marked before (nothing added)."""
        mark = self.db.insert_ignore(processed_t, "event_id", event_id=event_id, processed_at=utcnow())
        if conn.execute(mark).first() is None:
            return None
        bump = self.db.insert(counter_t).values(user_id=user_id, message_count=1)
        bump = bump.on_conflict_do_update(
            index_elements=["user_id"], set_={"message_count": counter_t.c.message_count + 1}
        ).returning(counter_t.c.message_count)
        return int(conn.execute(bump).scalar_one())

    def increment_once(self, user_id: str, event_id: str) -> int:
        def work(conn: Connection) -> int:
            counted = self._count(conn, user_id, event_id)
            if counted is not None:
                return counted
            value = conn.execute(
                select(counter_t.c.message_count).where(counter_t.c.user_id == user_id)
            ).scalar()
            return int(value or 0)

        return int(self._run(work, "count the message"))

    def increment_many(self, events: Sequence[tuple[str, str]]) -> int:
        """All in one transaction: each event's mark and its user's increment."""

        def work(conn: Connection) -> int:
            return sum(self._count(conn, user_id, event_id) is not None for user_id, event_id in events)

        return int(self._run(work, "count the messages")) if events else 0

    def reset(self) -> int:
        return int(self._run(lambda c: c.execute(delete(counter_t)).rowcount, "reset the counters") or 0)

    def all(self, limit: int = 1000) -> dict[str, int]:
        query = select(counter_t).order_by(counter_t.c.message_count.desc()).limit(limit)
        rows = self._run(lambda c: c.execute(query).all(), "list the counters")
        return {u: int(n) for u, n in rows}

    def ping(self) -> None:
        self.db.ping()

    def close(self) -> None:
        return None  # the database is closed by its owner
