"""The chat-turn workflow's activities: all of its I/O, bound to the kit's ports.

    activities = TurnActivities(conversations=..., reviews=..., counters=..., model=...)
    runtime = LocalRuntime(..., activities=activities.as_dict())

Each activity takes (ctx, input) like Dapr's and returns a JSON-serialisable value, so a runtime can
record it in the workflow's history and replay it. Activities are idempotent per instance: a replayed
`store_turn` or `request_review` finds its row and writes nothing twice.

While someone listens to a turn on the reply channel (`ReplyChannel`, keyed by `ctx.workflow_id`),
`generate_reply` streams the reply and publishes its pieces there as they are written; what it returns,
and so what is recorded and replayed, is still the whole reply.
"""

from __future__ import annotations

import logging
from typing import Any

from daca_kit.core.clock import as_utc, iso, parse_iso, utcnow
from daca_kit.core.models import HistoryTurn, Reply, ReplyRequest
from daca_kit.core.ports import (
    ConversationStore,
    Counters,
    ReplyChannel,
    ReplyModel,
    ReviewStore,
    StreamingReplyModel,
)
from daca_kit.core.workflow import MESSAGES_TOPIC, REVIEW_TOPIC, cloud_event
from daca_kit.errors import BackendError, DacaError

log = logging.getLogger(__name__)


class TurnActivities:
    """The workflow's activities, bound to the kit's ports. Each takes (ctx, input) like Dapr's."""

    def __init__(
        self,
        *,
        conversations: ConversationStore,
        reviews: ReviewStore,
        counters: Counters,
        model: ReplyModel,
        replies: ReplyChannel | None = None,
    ) -> None:
        self.conversations = conversations
        self.reviews = reviews
        self.counters = counters
        self.model = model
        self.replies = replies
        # The outcome of the latest model call, for /health (probing Gemini would spend free-tier quota).
        self.model_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "fetch_message_count": self.fetch_message_count,
            "load_history": self.load_history,
            "generate_reply": self.generate_reply,
            "request_review": self.request_review,
            "close_review": self.close_review,
            "store_turn": self.store_turn,
        }

    def fetch_message_count(self, _ctx: Any, data: dict[str, Any]) -> int | None:
        """The user's count, or None when the counters are down (the reply says it is unknown)."""
        try:
            return self.counters.get(data["user_id"])
        except BackendError as exc:
            log.warning("message count unavailable: %s", exc)
            return None

    def load_history(self, _ctx: Any, data: dict[str, Any]) -> list[list[str]]:
        return [[t.message, t.reply] for t in self.conversations.history(data["user_id"], int(data["limit"]))]

    def generate_reply(self, ctx: Any, data: dict[str, Any]) -> dict[str, Any]:
        request = ReplyRequest(
            user_id=data["user_id"],
            text=data["text"],
            message_count=data.get("message_count"),
            history=[HistoryTurn(message=m, reply=r) for m, r in data.get("history") or []],
        )
        try:
            reply = self._generate(str(getattr(ctx, "workflow_id", "") or ""), request)
        except DacaError as exc:
            log.warning("reply model failed: %s", exc)
            self.model_error = str(exc)
            return {"error": str(exc)}
        self.model_error = None
        if not reply.text.strip():
            return {"error": "The reply model returned an empty reply; the message was not answered."}
        return {"text": reply.text, "model": reply.model, "offline": reply.offline}

    def _generate(self, instance_id: str, request: ReplyRequest) -> Reply:
        """The model's reply; streamed to the reply channel while someone listens to this turn."""
        replies = self.replies
        if (
            replies is None
            or not instance_id
            or not replies.listening(instance_id)
            or not isinstance(self.model, StreamingReplyModel)  # a protocol check: the slower test, last
        ):
            return self.model.generate(request)
        return self.model.stream(request, lambda text: replies.publish(instance_id, text))

    def request_review(self, _ctx: Any, data: dict[str, Any]) -> bool:
        event_id = f"{data['instance_id']}:HumanReviewRequired"
        event = cloud_event("HumanReviewRequired", event_id, REVIEW_TOPIC, dict(data))
        return bool(
            self.reviews.create_review(
                instance_id=data["instance_id"],
                user_id=data["user_id"],
                message=data["message"],
                proposed_reply=data["proposed_reply"],
                created_at=parse_iso(data["created_at"]),
                events=[(REVIEW_TOPIC, event_id, event)],
            )
        )

    def close_review(self, _ctx: Any, data: dict[str, Any]) -> dict[str, Any] | None:
        """None when the review is closed with `status`; the reviewer's decision when one came first."""
        row = self.reviews.close_review(data["instance_id"], data["status"], utcnow())
        if row is None:
            return None
        return {
            "approved": row["status"] == "approved",
            "reply": row["final_reply"],
            "reason": row["reason"],
            "reviewer": row["decided_by"],
            "edited": bool(row["edited"]),
            "decided_at": iso(as_utc(row["decided_at"])) if row["decided_at"] else None,
        }

    def store_turn(self, _ctx: Any, data: dict[str, Any]) -> bool:
        event_id = f"{data['instance_id']}:MessageSent"
        event = cloud_event("MessageSent", event_id, MESSAGES_TOPIC, dict(data))
        return bool(
            self.conversations.store_turn(
                instance_id=data["instance_id"],
                user_id=data["user_id"],
                message=data["message"],
                reply=data["reply"],
                timestamp=parse_iso(data["timestamp"]),
                events=[(MESSAGES_TOPIC, event_id, event)],
            )
        )
