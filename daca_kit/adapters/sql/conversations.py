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


class SqlConversations:
    """`ConversationStore` on table `conversation`; a turn and its events commit together."""

    def __init__(self, db: SqlDatabase, outbox: SqlOutbox) -> None:
        self.db = db
        self.outbox = outbox

    def history(self, user_id: str, limit: int) -> list[HistoryTurn]:
        """The last `limit` turns, oldest first: one indexed, bounded query whatever the history size."""
        if limit <= 0:
            return []
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
