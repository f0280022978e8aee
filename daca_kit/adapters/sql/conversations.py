"""Finished chat turns on SQL (the tutorial's table `conversation`).

conversations = SqlConversations(db, outbox)
conversations.store_turn(instance_id=..., ..., events=[(topic, event_id, event)])
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from daca_kit.adapters.sql.database import SqlDatabase
from daca_kit.adapters.sql.outbox import SqlOutbox
from daca_kit.adapters.sql.tables import conversation_t
from daca_kit.core.models import HistoryTurn
from daca_kit.core.ports import Event

# The turn's two statements on Postgres and CockroachDB, in the driver's own SQL (`SqlDatabase.direct`):
# one bounded read, and one statement that stores the turn and its events together (a data-modifying CTE:
# the events are inserted only when the turn's row was, and both commit as one implicit transaction).
# CockroachDB's INSERT reference (cockroachlabs.com/docs/stable/insert) gives both the WITH clause and
# ON CONFLICT ... RETURNING; the kit's tests run them on Postgres only (no CockroachDB here).
HISTORY_SQL = "SELECT message, reply FROM conversation WHERE user_id = %s ORDER BY id DESC LIMIT %s"
_TURN_ROW = (
    'INSERT INTO conversation (user_id, message, reply, "timestamp", instance_id) VALUES (%s, %s, %s, %s, %s) '
    "ON CONFLICT (instance_id) DO NOTHING RETURNING id"
)


def store_turn_sql(events: int) -> str:
    """The one statement that stores a turn with `events` outbox rows; it returns a row when it stored them."""
    if not events:
        return _TURN_ROW
    # Typed placeholders: a VALUES list in FROM gives no column to infer them from (CockroachDB asks).
    values = ", ".join(["(%s::TEXT, %s::TEXT, %s::TEXT, %s::TIMESTAMPTZ)"] * events)
    return (
        f"WITH turn AS ({_TURN_ROW}) "
        "INSERT INTO outbox (event_id, topic, payload, created_at, attempts) "
        "SELECT e.event_id, e.topic, e.payload, e.created_at, 0 "
        f"FROM turn, (VALUES {values}) AS e (event_id, topic, payload, created_at) RETURNING outbox.id"
    )


class SqlConversations:
    """`ConversationStore` on table `conversation`; a turn and its events commit together."""

    def __init__(self, db: SqlDatabase, outbox: SqlOutbox) -> None:
        self.db = db
        self.outbox = outbox

    def history(self, user_id: str, limit: int) -> list[HistoryTurn]:
        """The last `limit` turns, oldest first: one indexed, bounded query whatever the history size."""
        if limit <= 0:
            return []
        if self.db.direct_sql:
            rows = self.db.direct(
                lambda cur: cur.execute(HISTORY_SQL, (user_id, limit)).fetchall(),
                what="read the conversation history",
            )
            return [HistoryTurn(message=m, reply=r) for m, r in reversed(rows)]
        query = (
            select(conversation_t.c.message, conversation_t.c.reply)
            .where(conversation_t.c.user_id == user_id)
            .order_by(conversation_t.c.id.desc())
            .limit(limit)
        )
        rows = self.db.read(lambda c: c.execute(query).all(), what="read the conversation history")
        return [HistoryTurn(message=m, reply=r) for m, r in reversed(rows)]

    def turn_by_instance(self, instance_id: str) -> dict[str, Any] | None:
        query = select(conversation_t).where(conversation_t.c.instance_id == instance_id)
        row = self.db.read(lambda c: c.execute(query).mappings().first(), what="read the conversation turn")
        return dict(row) if row else None

    def conversations(self, user_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """Stored turns, newest first."""
        query = (
            select(conversation_t)
            .where(conversation_t.c.user_id == user_id)
            .order_by(conversation_t.c.id.desc())
            .limit(limit)
        )
        rows = self.db.read(lambda c: c.execute(query).mappings().all(), what="read conversations")
        return [dict(row) for row in rows]

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
        """Stores a turn and its events in one transaction.

        Returns False when this instance's turn was stored before (a replayed activity).
        """
        if self.db.direct_sql:
            params: list[Any] = [user_id, message, reply, timestamp, instance_id]
            for row in self.outbox.rows(events):
                params += row
            sql = store_turn_sql(len(events))
            stored = bool(
                self.db.direct(
                    lambda cur: cur.execute(sql, params).fetchall(), what="store the conversation turn"
                )
            )
            if stored and events:
                self.outbox.committed()
            return stored
        row = self.db.insert_ignore(
            conversation_t,
            "instance_id",
            user_id=user_id,
            message=message,
            reply=reply,
            timestamp=timestamp,
            instance_id=instance_id,
        )

        def work(conn: Connection) -> bool:
            if conn.execute(row).first() is None:
                return False  # stored by an earlier run of this activity
            self.outbox.add(conn, events)
            return True

        stored = bool(self.db.run(work, what="store the conversation turn"))
        if stored and events:
            self.outbox.committed()
        return stored

    def bulk_insert_turns(self, user_id: str, turns: list[tuple[str, str]], timestamp: datetime) -> None:
        """Seeds history (benchmarks, demos) without events."""
        rows = [
            {"user_id": user_id, "message": m, "reply": r, "timestamp": timestamp, "instance_id": None}
            for m, r in turns
        ]
        self.db.run(lambda c: c.execute(insert(conversation_t), rows), what="seed conversations")
