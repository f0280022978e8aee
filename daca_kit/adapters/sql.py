"""SQL storage on SQLite, Postgres or CockroachDB: conversations, reviews, the outbox, workflow state,
and the embedded analytics counters.

    store = SqlStore("sqlite:///data/daca.db"); store.create_all()

Writes that belong together go in one transaction (a turn and its MessageSent event; a review
decision and the workflow event that resumes the turn). On CockroachDB a transaction that hits a
serialization conflict (SQLSTATE 40001) is retried, as CockroachDB asks clients to do.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, delete, event, func, insert, select, update
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.pool import StaticPool
from sqlmodel import SQLModel

from daca_kit.clock import iso, utcnow
from daca_kit.errors import AlreadyDecided, BackendError, ConfigError, CountersError, NotFound
from daca_kit.models import (
    Conversation,
    MessageCounter,
    OutboxEvent,
    ProcessedEvent,
    Review,
    WorkflowEvent,
    WorkflowInstance,
)
from daca_kit.ports import HistoryTurn

log = logging.getLogger(__name__)

conversation_t = Conversation.__table__  # type: ignore[attr-defined]
review_t = Review.__table__  # type: ignore[attr-defined]
outbox_t = OutboxEvent.__table__  # type: ignore[attr-defined]
instance_t = WorkflowInstance.__table__  # type: ignore[attr-defined]
wfevent_t = WorkflowEvent.__table__  # type: ignore[attr-defined]
counter_t = MessageCounter.__table__  # type: ignore[attr-defined]
processed_t = ProcessedEvent.__table__  # type: ignore[attr-defined]


def normalize_url(url: str) -> str:
    """Chooses the psycopg 3 driver for Postgres and CockroachDB URLs; creates SQLite's folder."""
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme in ("postgres", "postgresql"):
        return "postgresql+psycopg://" + rest
    if scheme == "cockroachdb":
        return "cockroachdb+psycopg://" + rest
    return url


def describe_url(url: str) -> str:
    """The URL without its password, for messages and /health."""
    try:
        return make_url(normalize_url(url)).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a description must never fail
        return url.split("://", 1)[0] + "://…"


def backend_kind(url: str) -> str:
    scheme = url.split("://", 1)[0].lower()
    if scheme.startswith("sqlite"):
        return "sqlite"
    if scheme.startswith("cockroach"):
        return "cockroachdb"
    return "postgres"


class SqlStore:
    """All SQL the kit runs. Thread-safe; one engine per store."""

    def __init__(self, url: str, *, engine: Engine | None = None, echo: bool = False) -> None:
        self.url = url
        self.kind = backend_kind(url)
        self.statements = 0
        self._count_lock = threading.Lock()
        self._after_outbox: list[Callable[[], None]] = []
        self.engine = engine or self._make_engine(url, echo)
        event.listen(self.engine, "before_cursor_execute", self._count_statement)

    # -- engine -------------------------------------------------------------------------------
    def _make_engine(self, url: str, echo: bool) -> Engine:
        full = normalize_url(url)
        try:
            parsed = make_url(full)
        except Exception as exc:  # noqa: BLE001
            raise ConfigError("DATABASE_URL is not a valid SQLAlchemy URL") from exc
        if self.kind == "sqlite":
            database = parsed.database or ""
            memory = database in ("", ":memory:")
            if not memory:
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
            if memory:
                kwargs["poolclass"] = StaticPool
            engine = create_engine(full, echo=echo, **kwargs)

            @event.listens_for(engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                cur = dbapi_conn.cursor()
                if not memory:
                    cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA busy_timeout=30000")
                cur.close()

            return engine
        # No pre-ping: it would double the statements (and CockroachDB request units) per turn.
        # Connections are recycled before serverless idle cut-offs, and a dropped one is retried once.
        return create_engine(full, echo=echo, pool_size=10, max_overflow=30, pool_recycle=240)

    def insert_ignore(self, table: Any, key: str, **values: Any) -> Any:
        """INSERT ... ON CONFLICT (key) DO NOTHING RETURNING key: `.first()` is None when the row existed."""
        from sqlalchemy.dialects import postgresql, sqlite

        insert_ = sqlite.insert if self.kind == "sqlite" else postgresql.insert
        return (
            insert_(table)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[key])
            .returning(table.c[key])
        )

    def _count_statement(self, *_args: Any) -> None:
        with self._count_lock:
            self.statements += 1

    def create_all(self) -> None:
        try:
            SQLModel.metadata.create_all(self.engine)
        except SQLAlchemyError as exc:
            raise BackendError(self._explain(exc, "create the tables"), backend="database") from exc

    def close(self) -> None:
        self.engine.dispose()

    def on_outbox(self, callback: Callable[[], None]) -> None:
        """Calls `callback` after each commit that added outbox events (wakes the relay)."""
        self._after_outbox.append(callback)

    def _notify_outbox(self) -> None:
        for callback in self._after_outbox:
            callback()

    @contextmanager
    def tx(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    def run(self, work: Callable[[Connection], Any], *, what: str) -> Any:
        """Runs `work` in a transaction; retries CockroachDB conflicts and one dropped connection."""
        attempts = 0
        while True:
            attempts += 1
            try:
                with self.engine.begin() as conn:
                    return work(conn)
            except DBAPIError as exc:
                sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
                retry = (sqlstate == "40001" and attempts < 8) or (
                    exc.connection_invalidated and attempts < 2
                )
                if retry:
                    time.sleep(min(0.01 * 2**attempts, 0.5))
                    continue
                raise BackendError(self._explain(exc, what), backend="database") from exc
            except IntegrityError:
                raise
            except SQLAlchemyError as exc:
                raise BackendError(self._explain(exc, what), backend="database") from exc

    def _explain(self, exc: Exception, what: str) -> str:
        return f"The database could not {what} ({type(exc).__name__}); check DATABASE_URL ({describe_url(self.url)})"

    def read(self, work: Callable[[Connection], Any], *, what: str) -> Any:
        """A single-statement read: no transaction of its own where the database allows (saves a COMMIT)."""
        if self.kind == "sqlite":
            return self.run(work, what=what)
        try:
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                return work(conn)
        except DBAPIError as exc:
            if exc.connection_invalidated:
                return self.run(work, what=what)
            raise BackendError(self._explain(exc, what), backend="database") from exc
        except SQLAlchemyError as exc:
            raise BackendError(self._explain(exc, what), backend="database") from exc

    def ping(self) -> None:
        self.run(lambda c: c.exec_driver_sql("SELECT 1").scalar(), what="answer a query")

    # -- conversations ------------------------------------------------------------------------
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
        rows = self.read(lambda c: c.execute(query).all(), what="read the conversation history")
        return [HistoryTurn(message=m, reply=r) for m, r in reversed(rows)]

    def turn_by_instance(self, instance_id: str) -> dict[str, Any] | None:
        query = select(conversation_t).where(conversation_t.c.instance_id == instance_id)
        row = self.read(lambda c: c.execute(query).mappings().first(), what="read the conversation turn")
        return dict(row) if row else None

    def conversations(self, user_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """Stored turns, newest first."""
        query = (
            select(conversation_t)
            .where(conversation_t.c.user_id == user_id)
            .order_by(conversation_t.c.id.desc())
            .limit(limit)
        )
        rows = self.read(lambda c: c.execute(query).mappings().all(), what="read conversations")
        return [dict(row) for row in rows]

    def store_turn(
        self,
        *,
        instance_id: str,
        user_id: str,
        message: str,
        reply: str,
        timestamp: datetime,
        events: list[tuple[str, str, dict[str, Any]]],
    ) -> bool:
        """Stores a turn and its events (topic, event_id, payload) in one transaction.

        Returns False when this instance's turn was stored before (a replayed activity).
        """

        row = self.insert_ignore(
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
            self._add_events(conn, events)
            return True

        stored = self.run(work, what="store the conversation turn")
        if stored and events:
            self._notify_outbox()
        return bool(stored)

    def bulk_insert_turns(self, user_id: str, turns: list[tuple[str, str]], timestamp: datetime) -> None:
        """Seeds history (benchmarks, demos) without events."""
        rows = [
            {"user_id": user_id, "message": m, "reply": r, "timestamp": timestamp, "instance_id": None}
            for m, r in turns
        ]
        self.run(lambda c: c.execute(insert(conversation_t), rows), what="seed conversations")

    # -- outbox -------------------------------------------------------------------------------
    def _add_events(self, conn: Connection, events: list[tuple[str, str, dict[str, Any]]]) -> None:
        if not events:
            return
        now = utcnow()
        conn.execute(
            insert(outbox_t),
            [
                {
                    "event_id": eid,
                    "topic": topic,
                    "payload": json.dumps(payload),
                    "created_at": now,
                    "attempts": 0,
                }
                for topic, eid, payload in events
            ],
        )

    def outbox_batch(self, limit: int = 100) -> list[dict[str, Any]]:
        query = select(outbox_t).order_by(outbox_t.c.id).limit(limit)
        rows = self.read(lambda c: c.execute(query).mappings().all(), what="read the outbox")
        return [{**row, "payload": json.loads(row["payload"])} for row in rows]

    def outbox_done(self, ids: list[int]) -> None:
        if ids:
            self.run(
                lambda c: c.execute(delete(outbox_t).where(outbox_t.c.id.in_(ids))), what="clear the outbox"
            )

    def outbox_failed(self, ids: list[int]) -> None:
        if ids:
            stmt = update(outbox_t).where(outbox_t.c.id.in_(ids)).values(attempts=outbox_t.c.attempts + 1)
            self.run(lambda c: c.execute(stmt), what="update the outbox")

    def outbox_size(self) -> int:
        return int(
            self.run(
                lambda c: c.execute(select(func.count()).select_from(outbox_t)).scalar_one(),
                what="count the outbox",
            )
        )

    # -- reviews ------------------------------------------------------------------------------
    def create_review(
        self,
        *,
        instance_id: str,
        user_id: str,
        message: str,
        proposed_reply: str,
        created_at: datetime,
        events: list[tuple[str, str, dict[str, Any]]],
    ) -> bool:
        """Records a pending review with its HumanReviewRequired event; idempotent per instance."""

        def work(conn: Connection) -> bool:
            if conn.execute(
                select(review_t.c.instance_id).where(review_t.c.instance_id == instance_id)
            ).first():
                return False
            conn.execute(
                insert(review_t).values(
                    instance_id=instance_id,
                    user_id=user_id,
                    message=message,
                    proposed_reply=proposed_reply,
                    status="pending",
                    created_at=created_at,
                    edited=False,
                )
            )
            self._add_events(conn, events)
            return True

        created = self.run(work, what="record the review")
        if created and events:
            self._notify_outbox()
        return bool(created)

    def pending_reviews(self, limit: int = 200) -> list[dict[str, Any]]:
        query = (
            select(review_t)
            .where(review_t.c.status == "pending")
            .order_by(review_t.c.created_at, review_t.c.instance_id)
            .limit(limit)
        )
        return [dict(r) for r in self.read(lambda c: c.execute(query).mappings().all(), what="list reviews")]

    def decided_reviews(self, limit: int = 50) -> list[dict[str, Any]]:
        query = (
            select(review_t)
            .where(review_t.c.status != "pending")
            .order_by(review_t.c.decided_at.desc())
            .limit(limit)
        )
        return [
            dict(r) for r in self.read(lambda c: c.execute(query).mappings().all(), what="list decisions")
        ]

    def get_review(self, instance_id: str) -> dict[str, Any] | None:
        query = select(review_t).where(review_t.c.instance_id == instance_id)
        row = self.read(lambda c: c.execute(query).mappings().first(), what="read the review")
        return dict(row) if row else None

    def decide_review(
        self,
        instance_id: str,
        *,
        approved: bool,
        reply: str | None,
        reason: str | None,
        reviewer: str,
        decided_at: datetime,
        workflow_event: tuple[str, dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Decides a pending review exactly once. With `workflow_event` (name, payload), the event that
        resumes the local workflow is written in the same transaction, so a crash cannot separate them.
        Raises NotFound or AlreadyDecided.
        """

        def work(conn: Connection) -> dict[str, Any]:
            row = (
                conn.execute(select(review_t).where(review_t.c.instance_id == instance_id)).mappings().first()
            )
            if row is None:
                raise NotFound(f"No review with id '{instance_id}'.")
            if row["status"] != "pending":
                raise AlreadyDecided(f"Review '{instance_id}' was already decided ({row['status']}).")
            edited = bool(approved and reply is not None and reply.strip() and reply != row["proposed_reply"])
            final = (reply if edited else row["proposed_reply"]) if approved else None
            values = {
                "status": "approved" if approved else "rejected",
                "decided_at": decided_at,
                "decided_by": reviewer,
                "final_reply": final,
                "edited": edited,
                "reason": reason,
            }
            result = conn.execute(
                update(review_t)
                .where(review_t.c.instance_id == instance_id, review_t.c.status == "pending")
                .values(**values)
            )
            if result.rowcount != 1:
                raise AlreadyDecided(f"Review '{instance_id}' was already decided.")
            if workflow_event is not None:
                name, payload = workflow_event
                payload = {**payload, "edited": edited, "decided_at": iso(decided_at)}
                conn.execute(
                    insert(wfevent_t).values(
                        instance_id=instance_id, name=name, payload=json.dumps(payload), created_at=decided_at
                    )
                )
            return {**dict(row), **values}

        return dict(self.run(work, what="record the review decision"))

    def close_review(self, instance_id: str, status: str, decided_at: datetime) -> None:
        """Marks a still-pending review as ended without a decision (e.g. `timed_out`)."""
        stmt = (
            update(review_t)
            .where(review_t.c.instance_id == instance_id, review_t.c.status == "pending")
            .values(status=status, decided_at=decided_at, decided_by="system")
        )
        self.run(lambda c: c.execute(stmt), what="close the review")

    # -- workflow state (local runtime) -------------------------------------------------------
    def wf_get(self, instance_id: str) -> dict[str, Any] | None:
        query = select(instance_t).where(instance_t.c.instance_id == instance_id)
        row = self.read(lambda c: c.execute(query).mappings().first(), what="read the workflow state")
        return dict(row) if row else None

    def wf_active(self) -> list[dict[str, Any]]:
        query = select(instance_t).where(instance_t.c.runtime_status == "RUNNING")
        return [dict(r) for r in self.run(lambda c: c.execute(query).mappings().all(), what="list workflows")]

    def wf_events(self, instance_id: str) -> list[dict[str, Any]]:
        query = select(wfevent_t).where(wfevent_t.c.instance_id == instance_id).order_by(wfevent_t.c.id)
        rows = self.run(lambda c: c.execute(query).mappings().all(), what="read workflow events")
        return [{**r, "payload": json.loads(r["payload"])} for r in rows]

    def wf_add_event(self, instance_id: str, name: str, payload: dict[str, Any]) -> None:
        stmt = insert(wfevent_t).values(
            instance_id=instance_id, name=name, payload=json.dumps(payload), created_at=utcnow()
        )
        self.run(lambda c: c.execute(stmt), what="record the workflow event")

    def wf_save(
        self,
        state: dict[str, Any],
        *,
        expected_version: int | None,
        consumed_events: list[int],
    ) -> bool:
        """Inserts (expected_version None) or updates an instance if nobody else saved it meanwhile.

        Consumed events are deleted in the same transaction. Returns False on a lost race.
        """
        values = {
            k: state[k]
            for k in (
                "name",
                "input",
                "history",
                "runtime_status",
                "custom_status",
                "output",
                "timer_fire_at",
                "created_at",
                "updated_at",
            )
        }

        def work(conn: Connection) -> bool:
            if expected_version is None:
                new = self.insert_ignore(
                    instance_t, "instance_id", instance_id=state["instance_id"], version=1, **values
                )
                if conn.execute(new).first() is None:
                    return False
            else:
                result = conn.execute(
                    update(instance_t)
                    .where(
                        instance_t.c.instance_id == state["instance_id"],
                        instance_t.c.version == expected_version,
                    )
                    .values(version=expected_version + 1, **values)
                )
                if result.rowcount != 1:
                    return False
            if consumed_events:
                conn.execute(delete(wfevent_t).where(wfevent_t.c.id.in_(consumed_events)))
            return True

        return bool(self.run(work, what="save the workflow state"))


class SqlCounters:
    """Embedded analytics counters in the same SQL database (tables `message_counter`, `processed_event`)."""

    name = "sql"

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    def _run(self, work: Callable[[Connection], Any], what: str) -> Any:
        try:
            return self.store.run(work, what=what)
        except BackendError as exc:
            raise CountersError(str(exc)) from exc

    def get(self, user_id: str) -> int:
        query = select(counter_t.c.message_count).where(counter_t.c.user_id == user_id)
        value = self._run(lambda c: c.execute(query).scalar(), "read the message count")
        return int(value or 0)

    def _insert(self) -> Any:
        """The dialect's INSERT, which has ON CONFLICT (SQLite, Postgres and CockroachDB all do)."""
        from sqlalchemy.dialects import postgresql, sqlite

        return sqlite.insert if self.store.kind == "sqlite" else postgresql.insert

    def set(self, user_id: str, value: int) -> None:
        stmt = self._insert()(counter_t).values(user_id=user_id, message_count=value)
        stmt = stmt.on_conflict_do_update(index_elements=["user_id"], set_={"message_count": value})
        self._run(lambda c: c.execute(stmt), "set the message count")

    def increment_once(self, user_id: str, event_id: str) -> int:
        dialect_insert = self._insert()
        mark = dialect_insert(processed_t).values(event_id=event_id, processed_at=utcnow())
        mark = mark.on_conflict_do_nothing(index_elements=["event_id"]).returning(processed_t.c.event_id)
        bump = dialect_insert(counter_t).values(user_id=user_id, message_count=1)
        bump = bump.on_conflict_do_update(
            index_elements=["user_id"], set_={"message_count": counter_t.c.message_count + 1}
        ).returning(counter_t.c.message_count)

        def work(conn: Connection) -> int:
            if conn.execute(mark).first() is not None:
                return int(conn.execute(bump).scalar_one())
            value = conn.execute(
                select(counter_t.c.message_count).where(counter_t.c.user_id == user_id)
            ).scalar()
            return int(value or 0)

        return int(self._run(work, "count the message"))

    def reset(self) -> int:
        return int(self._run(lambda c: c.execute(delete(counter_t)).rowcount, "reset the counters") or 0)

    def all(self, limit: int = 1000) -> dict[str, int]:
        query = select(counter_t).order_by(counter_t.c.message_count.desc()).limit(limit)
        rows = self._run(lambda c: c.execute(query).all(), "list the counters")
        return {u: int(n) for u, n in rows}
