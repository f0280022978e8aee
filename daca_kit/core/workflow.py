"""The chat-turn workflow, written once in Dapr Workflow style.

    runtime = LocalRuntime(..., workflows={WORKFLOW_NAME: chat_turn}, activities=activities.as_dict())

The workflow body only yields tasks and makes decisions from their results: no clock reads (it uses
`ctx.current_utc_datetime`), no random ids (ids derive from `ctx.instance_id`), no I/O. Replaying its
history therefore gives the same decisions, on the kit's local runtime and on Dapr's engine alike.
All I/O happens in the activities (`daca_kit.core.activities`), which take and return JSON values.
The context and the tasks are the runtime's own: each runtime registers how to race its tasks
(`register_when_any`), so this module names no engine.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Iterable
from datetime import timedelta
from functools import lru_cache
from typing import Any

from daca_kit.core.clock import iso
from daca_kit.core.ports import WorkflowContext
from daca_kit.errors import WorkflowError

WORKFLOW_NAME = "chat_turn"
REVIEW_EVENT = "review_decision"
MESSAGES_TOPIC = "messages"
REVIEW_TOPIC = "human-review"
REJECTED_REPLY = "Message rejected by human reviewer."
TIMED_OUT_REPLY = (
    "No reviewer decided on this message in time, so it was not answered. Please send it again later."
)
# Activities after which someone outside the turn can act on it (a reviewer may decide at once): a
# runtime that stores a turn lazily stores it before running them (LocalRuntime's `checkpoint_before`).
EXPOSING_ACTIVITIES = ("request_review",)


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


_RACES: dict[type, Callable[[list[Any]], Any]] = {}


def register_when_any(task_type: type, race: Callable[[list[Any]], Any]) -> None:
    """A runtime says how to race its own tasks (`task_type` is the base class of its tasks)."""
    _RACES[task_type] = race


def when_any(tasks: list[Any]) -> Any:
    """A task that completes with the first of `tasks` to complete, on whichever runtime made them."""
    for task_type, race in _RACES.items():
        if all(isinstance(t, task_type) for t in tasks):
            return race(tasks)
    raise WorkflowError("when_any got tasks from no registered workflow runtime")


def chat_turn(ctx: WorkflowContext, turn: dict[str, Any]) -> Generator[Any, Any, dict[str, Any]]:
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
            # The store settles the race: a decision committed before the review is closed stands, and
            # one committed after is refused (409), so the review and the turn's outcome always agree.
            decision = yield ctx.call_activity(
                "close_review", input={"instance_id": ctx.instance_id, "status": "timed_out"}
            )
            if not decision:
                ctx.set_custom_status("timed_out")
                return {**base, "status": "timed_out", "reply": TIMED_OUT_REPLY}
        else:
            decision = decision_task.get_result() or {}
        ctx.set_custom_status("running")
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
