"""The chat-turn workflow, written once in Dapr Workflow style, and its activities.

    runtime.register_workflow(chat_turn, name="chat_turn")
    for name, fn in TurnActivities(...).as_dict().items(): runtime.register_activity(fn, name=name)

The workflow body only yields tasks and makes decisions from their results: no clock reads (it uses
`ctx.current_utc_datetime`), no random ids (ids derive from `ctx.instance_id`), no I/O. Replaying its
history therefore gives the same decisions, on the kit's local runtime and on Dapr's engine alike.
All I/O happens in activities, which take and return JSON-serialisable values.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Generator, Iterable
from datetime import timedelta
from functools import lru_cache
from typing import Any

from daca_kit.clock import iso, utcnow
from daca_kit.errors import BackendError, DacaError
from daca_kit.ports import Counters, HistoryTurn, ReplyModel, ReplyRequest

log = logging.getLogger(__name__)

WORKFLOW_NAME = "chat_turn"
REVIEW_EVENT = "review_decision"
MESSAGES_TOPIC = "messages"
REVIEW_TOPIC = "human-review"
REJECTED_REPLY = "Message rejected by human reviewer."
TIMED_OUT_REPLY = (
    "No reviewer decided on this message in time, so it was not answered. Please send it again later."
)
TERMINAL_STATUSES = ("completed", "rejected", "timed_out", "failed")


@lru_cache(maxsize=32)
def _keyword_pattern(keywords: tuple[str, ...]) -> re.Pattern[str] | None:
    words = [re.escape(k) for k in keywords if k]
    if not words:
        return None
    # Whole words only: "help" matches "Help!" but not "helpful".
    return re.compile(r"(?<![\w])(?:" + "|".join(words) + r")(?![\w])", re.IGNORECASE)


def is_sensitive(text: str, keywords: Iterable[str]) -> bool:
    """True when `text` contains one of `keywords` as a whole word, ignoring case."""
    pattern = _keyword_pattern(tuple(k.strip().lower() for k in keywords))
    return bool(pattern and pattern.search(text))


def cloud_event(event_type: str, event_id: str, topic: str, data: dict[str, Any]) -> dict[str, Any]:
    """A CloudEvents 1.0 envelope, the shape Dapr pub/sub delivers."""
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "daca-kit",
        "type": event_type,
        "topic": topic,
        "datacontenttype": "application/json",
        "time": data.get("timestamp"),
        "data": data,
    }


def when_any(tasks: list[Any]) -> Any:
    """Completes when the first of `tasks` completes, on whichever runtime made the tasks."""
    from daca_kit import runtime as local

    if all(isinstance(t, local.Task) for t in tasks):
        return local.WhenAnyTask(tasks)
    from dapr.ext.workflow import when_any as dapr_when_any

    return dapr_when_any(tasks)


def chat_turn(ctx: Any, turn: dict[str, Any]) -> Generator[Any, Any, dict[str, Any]]:
    """One chat turn. Input: user_id, text, metadata, tags, keywords, history_turns, review_timeout_s."""
    user_id = turn["user_id"]
    if "message_count" in turn:  # read together with the rate limit, before the turn started
        count = turn["message_count"]
    else:
        count = yield ctx.call_activity("fetch_message_count", input={"user_id": user_id})
    history = yield ctx.call_activity(
        "load_history", input={"user_id": user_id, "limit": turn.get("history_turns", 10)}
    )
    ctx.set_custom_status("running")
    generated = yield ctx.call_activity(
        "generate_reply",
        input={"user_id": user_id, "text": turn["text"], "message_count": count, "history": history},
    )
    base = {"user_id": user_id, "message_count": count}
    if generated.get("error"):
        return {**base, "status": "failed", "reply": None, "error": generated["error"]}
    reply = generated["text"]
    review: dict[str, Any] | None = None

    if is_sensitive(turn["text"], turn.get("keywords", ())):
        ctx.set_custom_status("pending_review")
        yield ctx.call_activity(
            "request_review",
            input={
                "instance_id": ctx.instance_id,
                "user_id": user_id,
                "message": turn["text"],
                "proposed_reply": reply,
                "created_at": iso(ctx.current_utc_datetime),
            },
        )
        decision_task = ctx.wait_for_external_event(REVIEW_EVENT)
        timeout_task = ctx.create_timer(
            ctx.current_utc_datetime + timedelta(seconds=float(turn.get("review_timeout_s", 86400)))
        )
        winner = yield when_any([decision_task, timeout_task])
        if winner == timeout_task:
            yield ctx.call_activity(
                "close_review", input={"instance_id": ctx.instance_id, "status": "timed_out"}
            )
            ctx.set_custom_status("timed_out")
            return {**base, "status": "timed_out", "reply": TIMED_OUT_REPLY}
        ctx.set_custom_status("running")
        decision = decision_task.get_result() or {}
        review = {k: decision.get(k) for k in ("reviewer", "edited", "reason", "decided_at")}
        if not decision.get("approved"):
            ctx.set_custom_status("rejected")
            return {**base, "status": "rejected", "reply": REJECTED_REPLY, "review": review}
        reply = decision.get("reply") or reply

    timestamp = iso(ctx.current_utc_datetime)
    yield ctx.call_activity(
        "store_turn",
        input={
            "instance_id": ctx.instance_id,
            "user_id": user_id,
            "message": turn["text"],
            "reply": reply,
            "timestamp": timestamp,
        },
    )
    ctx.set_custom_status("completed")
    return {
        **base,
        "status": "completed",
        "reply": reply,
        "timestamp": timestamp,
        "model": generated.get("model"),
        "offline": bool(generated.get("offline")),
        "review": review,
    }


class TurnActivities:
    """The workflow's activities, bound to the kit's ports. Each takes (ctx, input) like Dapr's."""

    def __init__(self, *, store: Any, counters: Counters, model: ReplyModel, meter: Any = None) -> None:
        self.store = store
        self.counters = counters
        self.model = model
        self.meter = meter
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
        return [[t.message, t.reply] for t in self.store.history(data["user_id"], int(data["limit"]))]

    def generate_reply(self, _ctx: Any, data: dict[str, Any]) -> dict[str, Any]:
        request = ReplyRequest(
            user_id=data["user_id"],
            text=data["text"],
            message_count=data.get("message_count"),
            history=[HistoryTurn(message=m, reply=r) for m, r in data.get("history") or []],
        )
        if self.meter is not None:
            self.meter.model_calls += 1
        try:
            reply = self.model.generate(request)
        except DacaError as exc:
            log.warning("reply model failed: %s", exc)
            self.model_error = str(exc)
            return {"error": str(exc)}
        self.model_error = None
        if not reply.text.strip():
            return {"error": "The reply model returned an empty reply; the message was not answered."}
        return {"text": reply.text, "model": reply.model, "offline": reply.offline}

    def request_review(self, _ctx: Any, data: dict[str, Any]) -> bool:
        event_id = f"{data['instance_id']}:HumanReviewRequired"
        event = cloud_event("HumanReviewRequired", event_id, REVIEW_TOPIC, dict(data))
        from datetime import datetime

        return bool(
            self.store.create_review(
                instance_id=data["instance_id"],
                user_id=data["user_id"],
                message=data["message"],
                proposed_reply=data["proposed_reply"],
                created_at=datetime.fromisoformat(data["created_at"].replace("Z", "+00:00")),
                events=[(REVIEW_TOPIC, event_id, event)],
            )
        )

    def close_review(self, _ctx: Any, data: dict[str, Any]) -> None:
        self.store.close_review(data["instance_id"], data["status"], utcnow())

    def store_turn(self, _ctx: Any, data: dict[str, Any]) -> bool:
        from datetime import datetime

        event_id = f"{data['instance_id']}:MessageSent"
        event = cloud_event("MessageSent", event_id, MESSAGES_TOPIC, dict(data))
        return bool(
            self.store.store_turn(
                instance_id=data["instance_id"],
                user_id=data["user_id"],
                message=data["message"],
                reply=data["reply"],
                timestamp=datetime.fromisoformat(data["timestamp"].replace("Z", "+00:00")),
                events=[(MESSAGES_TOPIC, event_id, event)],
            )
        )
