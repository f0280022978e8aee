"""The local workflow runtime's state on SQL: instances with their replay history, and an inbox of raised
events per instance, consumed in the transaction that saves the history (on Dapr, raised on the engine
and then deleted: `daca_kit.adapters.dapr.inbox`).

    workflows = SqlWorkflowStore(db)
    workflows.save(state.to_row(), expected_version=3, consumed_events=[17])   # False: someone else won
    if workflows.claim(instance_id, owner, 60): ...; workflows.release(instance_id, owner)

With several processes on one database, the runtime leases an instance (table `workflow_lease`) before it
runs a step that does work, so a decision or a due timer seen by all of them resumes it in one; a lease
left by a killed process expires.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from daca_kit.adapters.sql.database import SqlDatabase
from daca_kit.adapters.sql.tables import instance_t, lease_t, wfevent_t
from daca_kit.core.clock import utcnow

SAVED_COLUMNS = (
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


class SqlWorkflowStore:
    """`WorkflowStore` on tables `workflow_instance` and `workflow_event` (optimistic versions)."""

    def __init__(self, db: SqlDatabase) -> None:
        self.db = db

    def get(self, instance_id: str) -> dict[str, Any] | None:
        query = select(instance_t).where(instance_t.c.instance_id == instance_id)
        row = self.db.read(lambda c: c.execute(query).mappings().first(), what="read the workflow state")
        return dict(row) if row else None

    def active(self) -> list[dict[str, Any]]:
        query = select(instance_t).where(instance_t.c.runtime_status == "RUNNING")
        return [
            dict(r) for r in self.db.run(lambda c: c.execute(query).mappings().all(), what="list workflows")
        ]

    def events(self, instance_id: str) -> list[dict[str, Any]]:
        query = select(wfevent_t).where(wfevent_t.c.instance_id == instance_id).order_by(wfevent_t.c.id)
        rows = self.db.run(lambda c: c.execute(query).mappings().all(), what="read workflow events")
        return [{**r, "payload": json.loads(r["payload"])} for r in rows]

    def pending_events(self, limit: int = 100) -> list[dict[str, Any]]:
        """Events of any instance not yet consumed or delivered, oldest first."""
        query = select(wfevent_t).order_by(wfevent_t.c.id).limit(limit)
        rows = self.db.read(lambda c: c.execute(query).mappings().all(), what="read workflow events")
        return [{**r, "payload": json.loads(r["payload"])} for r in rows]

    def delete_events(self, ids: list[int]) -> None:
        if ids:
            stmt = delete(wfevent_t).where(wfevent_t.c.id.in_(ids))
            self.db.run(lambda c: c.execute(stmt), what="delete delivered workflow events")

    def add(
        self, conn: Connection, instance_id: str, name: str, payload: dict[str, Any], at: datetime
    ) -> None:
        """Writes an event to the instance's inbox in the caller's transaction."""
        conn.execute(
            insert(wfevent_t).values(
                instance_id=instance_id, name=name, payload=json.dumps(payload), created_at=at
            )
        )

    def add_event(self, instance_id: str, name: str, payload: dict[str, Any]) -> None:
        self.db.run(
            lambda c: self.add(c, instance_id, name, payload, utcnow()), what="record the workflow event"
        )

    def save(
        self, state: dict[str, Any], *, expected_version: int | None, consumed_events: list[int]
    ) -> bool:
        """Inserts (expected_version None) or updates an instance if nobody else saved it meanwhile.

        Consumed events are deleted in the same transaction (all of them once the instance ended).
        Returns False on a lost race.
        """
        values = {k: state[k] for k in SAVED_COLUMNS}

        def work(conn: Connection) -> bool:
            if expected_version is None:
                new = self.db.insert_ignore(
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
            if state["runtime_status"] != "RUNNING":  # an ended instance reads no more events
                conn.execute(delete(wfevent_t).where(wfevent_t.c.instance_id == state["instance_id"]))
            elif consumed_events:
                conn.execute(delete(wfevent_t).where(wfevent_t.c.id.in_(consumed_events)))
            return True

        return bool(self.db.run(work, what="save the workflow state"))

    def claim(self, instance_id: str, owner: str, seconds: float) -> bool:
        """Takes the lease unless another owner holds one that has not expired (two statements at most)."""
        now = utcnow()
        until = now + timedelta(seconds=seconds)

        def work(conn: Connection) -> bool:
            new = self.db.insert_ignore(
                lease_t, "instance_id", instance_id=instance_id, owner=owner, expires_at=until
            )
            if conn.execute(new).first() is not None:
                return True
            taken = conn.execute(
                update(lease_t)
                .where(
                    lease_t.c.instance_id == instance_id,
                    (lease_t.c.owner == owner) | (lease_t.c.expires_at < now),
                )
                .values(owner=owner, expires_at=until)
            )
            return taken.rowcount == 1

        return bool(self.db.run(work, what="lease the workflow instance"))

    def release(self, instance_id: str, owner: str) -> None:
        stmt = delete(lease_t).where(lease_t.c.instance_id == instance_id, lease_t.c.owner == owner)
        self.db.run(lambda c: c.execute(stmt), what="release the workflow instance")
