"""The review desk: what reviewers see and decide (the REST `/reviews` routes and the Review tab call it).

kit.reviews.pending()                      # oldest first, with how long each has waited
kit.reviews.decide(instance_id, approved=True, reviewer="alice")
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from daca_kit.core.clock import as_utc, iso, utcnow
from daca_kit.core.ports import ReviewStore, WorkflowRuntime
from daca_kit.core.validation import known_id, validate_decision
from daca_kit.core.workflow import REVIEW_EVENT
from daca_kit.errors import NotFound

log = logging.getLogger(__name__)


@dataclass
class ReviewDesk:
    """Pending and decided reviews over the review store; a decision resumes its turn on the runtime."""

    store: ReviewStore
    runtime: WorkflowRuntime

    def pending(self, limit: int = 200) -> list[dict[str, Any]]:
        now = utcnow()
        return [
            {
                "instance_id": r["instance_id"],
                "user_id": r["user_id"],
                "message": r["message"],
                "proposed_reply": r["proposed_reply"],
                "created_at": iso(as_utc(r["created_at"])),
                "waiting_seconds": max(0, int((now - as_utc(r["created_at"])).total_seconds())),
            }
            for r in self.store.pending_reviews(limit)
        ]

    def decided(self, limit: int = 50) -> list[dict[str, Any]]:
        return [public_review(r) for r in self.store.decided_reviews(limit)]

    def get(self, instance_id: str) -> dict[str, Any]:
        row = self.store.get_review(known_id(instance_id))
        if row is None:
            raise NotFound(f"No review with id '{instance_id}'.")
        return public_review(row)

    def decide(
        self,
        instance_id: str,
        *,
        approved: bool,
        reply: str | None = None,
        reason: str | None = None,
        reviewer: str = "reviewer",
    ) -> dict[str, Any]:
        """Decides a pending review once and resumes its turn. Raises NotFound or AlreadyDecided.

        The event that resumes the turn is written in the decision's own transaction (the workflow
        inbox), so the decision and the turn's outcome never disagree: the runtime delivers it now, and
        after a failure or a restart later (on Dapr, raised on the engine once it accepts it).
        """
        known_id(instance_id)
        reply = validate_decision(reply, reason)
        payload = {"approved": bool(approved), "reply": reply, "reason": reason, "reviewer": reviewer}
        row = self.store.decide_review(
            instance_id,
            approved=bool(approved),
            reply=reply,
            reason=reason,
            reviewer=reviewer,
            decided_at=utcnow(),
            workflow_event=(REVIEW_EVENT, payload),
        )
        self.runtime.notify(instance_id)
        log.info("review %s %s by %s", instance_id, "approved" if approved else "rejected", reviewer)
        return public_review(row)


def public_review(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "instance_id": row["instance_id"],
        "user_id": row["user_id"],
        "message": row["message"],
        "proposed_reply": row["proposed_reply"],
        "status": row["status"],
        "created_at": iso(as_utc(row["created_at"])) if row.get("created_at") else None,
        "decided_at": iso(as_utc(row["decided_at"])) if row.get("decided_at") else None,
        "decided_by": row.get("decided_by"),
        "final_reply": row.get("final_reply"),
        "edited": bool(row.get("edited")),
        "reason": row.get("reason"),
    }
