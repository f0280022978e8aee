"""The transactional outbox on SQL: events are written in the transaction of the row they describe, and
the relay (`daca_kit.core.outbox`) publishes and deletes them.

    outbox = SqlOutbox(db); outbox.on_commit(relay.wake)
    with db.engine.begin() as conn: outbox.add(conn, events)   # inside another store's transaction
    outbox.publish_batch(100, lambda row: bus.publish(row["topic"], row["payload"]))   # the relay
    outbox.publish_together(100, lambda rows: bus.publish_many(...))   # the relay, on a batching bus

Several processes relay one outbox without publishing an event twice: on Postgres and CockroachDB each
batch is read with `SELECT ... FOR UPDATE SKIP LOCKED` in a transaction that publishes and deletes it, so
a row being published by one process is invisible to the others' batches. (CockroachDB has SKIP LOCKED
since cockroachdb/cockroach#85720, release note in cockroachdb/docs#14770.) The transaction publishes for
at most `budget` seconds, well inside the database call's deadline. SQLite serves one process: it reads,
publishes and deletes without holding the file's lock while publishing.
`publish_together` does the same for a bus that takes the whole batch at once (`BatchPublisher`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select

from daca_kit.adapters.sql.database import SqlDatabase
from daca_kit.adapters.sql.tables import outbox_t
from daca_kit.core.clock import utcnow
from daca_kit.core.ports import Event

# The relay's batch on Postgres and CockroachDB (`SqlDatabase.direct`, one transaction): rows another
# process is publishing are locked, so skipped; the published ones are deleted before the commit.
_LOCK_BATCH_SQL = (
    "SELECT id, event_id, topic, payload FROM outbox ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED"
)
_DELETE_SQL = "DELETE FROM outbox WHERE id = ANY(%s)"
# On Postgres the batch's commit does not wait for its WAL to reach the disk: a crash may forget the
# deletion of events already published, which are then published again, as after any crash between the
# publish and the commit (the consumer counts each event id once). The turns' own commits still wait, and
# no longer queue behind the relay's flushes.
_LAZY_COMMIT_SQL = "SET LOCAL synchronous_commit = off"


class SqlOutbox:
    """`OutboxStore` on table `outbox`."""

    def __init__(self, db: SqlDatabase) -> None:
        self.db = db
        self._after_commit: list[Callable[[], None]] = []

    def on_commit(self, callback: Callable[[], None]) -> None:
        self._after_commit.append(callback)

    def committed(self) -> None:
        """Called by the stores after a commit that added events."""
        for callback in self._after_commit:
            callback()

    def add(self, conn: Connection, events: list[Event]) -> None:
        """Writes `events` in the caller's transaction."""
        if not events:
            return
        conn.execute(
            insert(outbox_t),
            [
                {"event_id": eid, "topic": topic, "payload": payload, "created_at": at, "attempts": 0}
                for eid, topic, payload, at in self.rows(events)
            ],
        )

    @staticmethod
    def rows(events: list[Event]) -> list[tuple[str, str, str, datetime]]:
        """`events` as outbox columns (event_id, topic, payload, created_at), for a store's own statement."""
        now = utcnow()
        return [(eid, topic, json.dumps(payload), now) for topic, eid, payload in events]

    def batch(self, limit: int = 100) -> list[dict[str, Any]]:
        query = select(outbox_t).order_by(outbox_t.c.id).limit(limit)
        rows = self.db.read(lambda c: c.execute(query).mappings().all(), what="read the outbox")
        return [{**row, "payload": json.loads(row["payload"])} for row in rows]

    def done(self, ids: list[int]) -> None:
        if ids:
            self.db.run(
                lambda c: c.execute(delete(outbox_t).where(outbox_t.c.id.in_(ids))), what="clear the outbox"
            )

    def size(self) -> int:
        query = select(func.count()).select_from(outbox_t)
        return int(self.db.read(lambda c: c.execute(query).scalar_one(), what="count the outbox"))

    def publish_batch(
        self, limit: int, publish: Callable[[dict[str, Any]], None], budget: float = 1.0
    ) -> int:
        if self.db.kind == "sqlite":
            return self._publish_unlocked(limit, publish)
        failure: list[Exception] = []

        def work(conn: Connection) -> int:
            failure.clear()
            query = select(outbox_t).order_by(outbox_t.c.id).limit(limit).with_for_update(skip_locked=True)
            rows = conn.execute(query).mappings().all()
            done: list[int] = []
            ends = time.monotonic() + budget
            for row in rows:
                try:
                    publish({**row, "payload": json.loads(row["payload"])})
                except Exception as exc:  # noqa: BLE001 - raised after the published ones are deleted
                    failure.append(exc)
                    break
                done.append(row["id"])
                if time.monotonic() > ends:
                    break
            if done:
                conn.execute(delete(outbox_t).where(outbox_t.c.id.in_(done)))
            return len(done)

        sent = int(self.db.run(work, what="publish the outbox"))
        if failure:
            raise failure[0]
        return sent

    def _publish_unlocked(self, limit: int, publish: Callable[[dict[str, Any]], None]) -> int:
        done: list[int] = []
        try:
            for row in self.batch(limit):
                publish(row)
                done.append(row["id"])
        finally:
            self.done(done)
        return len(done)

    def publish_together(self, limit: int, publish_many: Callable[[list[dict[str, Any]]], list[int]]) -> int:
        """Hands up to `limit` events, oldest first, to `publish_many(rows)` in one call and deletes those
        published: it returns the positions it could not publish, which stay. Returns how many were
        published; an exception from `publish_many` (BusError) keeps every row."""
        if self.db.kind == "sqlite":
            rows = self.batch(limit)
            refused = set(publish_many(rows)) if rows else set()
            self.done([row["id"] for i, row in enumerate(rows) if i not in refused])
            return len(rows) - len(refused)

        def work(cur: Any) -> int:
            if lazy_commit:
                cur.execute(_LAZY_COMMIT_SQL)
            found = cur.execute(_LOCK_BATCH_SQL, (limit,)).fetchall()
            rows = [
                {"id": i, "event_id": eid, "topic": topic, "payload": json.loads(payload)}
                for i, eid, topic, payload in found
            ]
            refused = set(publish_many(rows)) if rows else set()
            done = [row["id"] for i, row in enumerate(rows) if i not in refused]
            if done:
                cur.execute(_DELETE_SQL, (done,))
                self.db.count_statements(1)
            return len(done)

        lazy_commit = self.db.kind == "postgres"
        return int(
            self.db.direct(work, what="publish the outbox", transaction=True, statements=1 + lazy_commit)
        )
