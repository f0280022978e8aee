"""Reviews on SQL: replies held for a human, decided exactly once.

reviews = SqlReviews(db, outbox, workflows)
reviews.decide_review(instance_id, approved=True, ..., workflow_event=("review_decision", payload))
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from daca_kit.adapters.sql.database import SqlDatabase
from daca_kit.adapters.sql.outbox import SqlOutbox
from daca_kit.adapters.sql.tables import review_t
from daca_kit.adapters.sql.workflows import SqlWorkflowStore
from daca_kit.core.clock import iso
from daca_kit.core.ports import Event
from daca_kit.errors import AlreadyDecided, NotFound


class SqlReviews:
    """`ReviewStore` on table `review`."""

    def __init__(self, db: SqlDatabase, outbox: SqlOutbox, workflows: SqlWorkflowStore) -> None:
        self.db = db
        self.outbox = outbox
        self.workflows = workflows

    def create_review(
        self,
        *,
        instance_id: str,
        user_id: str,
        message: str,
        proposed_reply: str,
        created_at: datetime,
        events: list[Event],
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
            self.outbox.add(conn, events)
            return True

        created = bool(self.db.run(work, what="record the review"))
        if created and events:
            self.outbox.committed()
        return created

    def _list(self, query: Any, what: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.read(lambda c: c.execute(query).mappings().all(), what=what)]

    def pending_reviews(self, limit: int = 200) -> list[dict[str, Any]]:
        query = (
            select(review_t)
            .where(review_t.c.status == "pending")
            .order_by(review_t.c.created_at, review_t.c.instance_id)
            .limit(limit)
        )
        return self._list(query, "list reviews")

    def decided_reviews(self, limit: int = 50) -> list[dict[str, Any]]:
        query = (
            select(review_t)
            .where(review_t.c.status != "pending")
            .order_by(review_t.c.decided_at.desc())
            .limit(limit)
        )
        return self._list(query, "list decisions")

    def get_review(self, instance_id: str) -> dict[str, Any] | None:
        query = select(review_t).where(review_t.c.instance_id == instance_id)
        row = self.db.read(lambda c: c.execute(query).mappings().first(), what="read the review")
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
            if row["status"] == "timed_out":
                raise AlreadyDecided(
                    f"Review '{instance_id}' timed out before this decision: the turn was answered that "
                    "no reviewer decided in time, and the user can send the message again."
                )
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
                self.workflows.add(conn, instance_id, name, payload, decided_at)
            return {**dict(row), **values}

        return dict(self.db.run(work, what="record the review decision"))

    def close_review(self, instance_id: str, status: str, decided_at: datetime) -> dict[str, Any] | None:
        """Ends a still-pending review without a decision (e.g. `timed_out`); None once it is closed so.

        Returns the review as a reviewer decided it when a decision got there first (the decision stands).
        """

        def work(conn: Connection) -> dict[str, Any] | None:
            closed = conn.execute(
                update(review_t)
                .where(review_t.c.instance_id == instance_id, review_t.c.status == "pending")
                .values(status=status, decided_at=decided_at, decided_by="system")
            )
            if closed.rowcount == 1:
                return None
            row = (
                conn.execute(select(review_t).where(review_t.c.instance_id == instance_id)).mappings().first()
            )
            # Closed with this status before (a replay after a crash), or never created: nothing stands.
            return dict(row) if row is not None and row["status"] != status else None

        return self.db.run(work, what="close the review")  # type: ignore[no-any-return]
