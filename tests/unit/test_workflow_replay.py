"""The one workflow definition, `chat_turn`, on Dapr's own replay engine (tests/support/replay.py).

Each path runs once with activities answered by fakes, recording history as daprd would; replaying
that history must make the same decisions. Deliberately bad variants (wall clock, uuid4, random,
state outside the history) must fail the replay, which shows the harness would catch them.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from daca_kit.adapters.dapr.workflow import DaprWorkflowRuntime
from daca_kit.core.workflow import REJECTED_REPLY, REVIEW_EVENT, TIMED_OUT_REPLY, WORKFLOW_NAME, chat_turn
from tests.support.replay import ReplayMismatch, ScenarioError, engine_registry, record, replay

TURN = {
    "user_id": "alice",
    "text": "Hello there",
    "metadata": {"session_id": "s-1"},
    "tags": [],
    "keywords": ["urgent", "help", "emergency"],
    "history_turns": 10,
    "review_timeout_s": 3600.0,
}
SENSITIVE = {**TURN, "text": "This is urgent, please help"}


@pytest.fixture(scope="module")
def registry() -> Iterator[Any]:
    """The durabletask registry DaprWorkflowRuntime filled with chat_turn (no sidecar involved)."""
    runtime = DaprWorkflowRuntime({WORKFLOW_NAME: chat_turn}, {})
    yield engine_registry(runtime)
    runtime.close()


def fakes(**overrides: Callable[[Any], Any]) -> dict[str, Callable[[Any], Any]]:
    answers: dict[str, Callable[[Any], Any]] = {
        "fetch_message_count": lambda data: 4,
        "load_history": lambda data: [["hi", "hello"]],
        "generate_reply": lambda data: {
            "text": f"Reply to: {data['text']}",
            "model": "fake-model",
            "offline": False,
        },
        "request_review": lambda data: True,
        "close_review": lambda data: None,
        "store_turn": lambda data: True,
    }
    answers.update(overrides)
    return answers


def decision(approved: bool, reply: str | None = None) -> tuple[str, dict[str, Any]]:
    return REVIEW_EVENT, {
        "approved": approved,
        "reply": reply,
        "reason": None if approved else "not appropriate",
        "reviewer": "reviewer",
        "decided_at": "2026-01-01T12:00:30.000Z",
        "edited": reply is not None,
    }


def test_non_sensitive_turn_runs_straight_through_and_replays(registry: Any) -> None:
    rec = record(registry, WORKFLOW_NAME, TURN, activities=fakes())
    replay(registry, rec)
    assert rec.status == "COMPLETED"
    assert rec.activities == ["fetch_message_count", "load_history", "generate_reply", "store_turn"]
    assert rec.output["status"] == "completed"
    assert rec.output["reply"] == "Reply to: Hello there"
    assert rec.output["message_count"] == 4
    assert rec.custom_statuses[-1] == "completed"
    # Time comes from the engine's history, not the wall clock: the recorded start is 2026-01-01 12:00.
    stored = dict(rec.activity_calls)["store_turn"]
    assert stored["timestamp"].startswith("2026-01-01T12:00:") and stored["instance_id"] == rec.instance_id


def test_sensitive_turn_waits_then_approved(registry: Any) -> None:
    rec = record(registry, WORKFLOW_NAME, SENSITIVE, activities=fakes(), events=[decision(True)])
    replay(registry, rec)
    assert rec.activities == [
        "fetch_message_count",
        "load_history",
        "generate_reply",
        "request_review",
        "store_turn",
    ]
    assert "pending_review" in rec.custom_statuses
    timers = [d for d in rec.decisions if d[1:2] == ("timer",)]
    # The event wait's own (never firing) timer, and the review timeout one hour after the request.
    assert [t[2] for t in timers] == ["externalEvent", "createTimer"]
    assert timers[1][3] == "2026-01-01T13:00:04"  # created in the work item after request_review
    assert rec.output["status"] == "completed"
    assert rec.output["reply"] == "Reply to: This is urgent, please help"
    assert rec.output["review"]["reviewer"] == "reviewer"


def test_sensitive_turn_edited_by_the_reviewer(registry: Any) -> None:
    rec = record(
        registry, WORKFLOW_NAME, SENSITIVE, activities=fakes(), events=[decision(True, "A kinder reply.")]
    )
    replay(registry, rec)
    assert rec.output["status"] == "completed"
    assert rec.output["reply"] == "A kinder reply."
    assert dict(rec.activity_calls)["store_turn"]["reply"] == "A kinder reply."
    assert rec.output["review"]["edited"] is True


def test_sensitive_turn_rejected(registry: Any) -> None:
    rec = record(registry, WORKFLOW_NAME, SENSITIVE, activities=fakes(), events=[decision(False)])
    replay(registry, rec)
    assert rec.activities == ["fetch_message_count", "load_history", "generate_reply", "request_review"]
    assert rec.output["status"] == "rejected"
    assert rec.output["reply"] == REJECTED_REPLY
    assert rec.custom_statuses[-1] == "rejected"


def test_sensitive_turn_times_out(registry: Any) -> None:
    rec = record(registry, WORKFLOW_NAME, SENSITIVE, activities=fakes(), fire_timers=True)
    replay(registry, rec)
    assert rec.activities[-1] == "close_review"
    assert dict(rec.activity_calls)["close_review"] == {"instance_id": rec.instance_id, "status": "timed_out"}
    assert rec.output["status"] == "timed_out"
    assert rec.output["reply"] == TIMED_OUT_REPLY


def test_model_failure_ends_the_turn_as_failed(registry: Any) -> None:
    rec = record(
        registry,
        WORKFLOW_NAME,
        SENSITIVE,
        activities=fakes(
            generate_reply=lambda data: {"error": "GEMINI_MODEL 'x' was not found: set GEMINI_MODEL"}
        ),
    )
    replay(registry, rec)
    assert rec.activities == ["fetch_message_count", "load_history", "generate_reply"]
    assert rec.status == "COMPLETED"  # the workflow decided; the turn's own status says it failed
    assert rec.output["status"] == "failed"
    assert "GEMINI_MODEL" in rec.output["error"]


def test_an_activity_that_raises_fails_the_instance_the_same_way_on_replay(registry: Any) -> None:
    def broken(data: Any) -> Any:
        raise RuntimeError("database is down")

    rec = record(registry, WORKFLOW_NAME, TURN, activities=fakes(store_turn=broken))
    replay(registry, rec)
    assert rec.status == "FAILED"
    assert rec.failure is not None and rec.failure[0] == "TaskFailedError"
    assert "database is down" in rec.failure[1]


def test_a_scenario_without_the_awaited_event_is_reported(registry: Any) -> None:
    with pytest.raises(ScenarioError, match="pending_review"):
        record(registry, WORKFLOW_NAME, SENSITIVE, activities=fakes())


# -- the harness catches non-deterministic workflows ---------------------------------------------------
def turn_variant(read: Callable[[Any], Any]) -> Callable[..., Any]:
    """A chat-turn-shaped workflow that puts `read(ctx)` into an activity's input and its result."""

    def variant(ctx: Any, turn: dict[str, Any]) -> Any:
        user_id = turn["user_id"]
        count = yield ctx.call_activity("fetch_message_count", input={"user_id": user_id})
        generated = yield ctx.call_activity(
            "generate_reply",
            input={"user_id": user_id, "text": turn["text"], "message_count": count, "history": []},
        )
        stamp = str(read(ctx))
        yield ctx.call_activity(
            "store_turn",
            input={
                "instance_id": ctx.instance_id,
                "user_id": user_id,
                "message": turn["text"],
                "reply": generated["text"],
                "timestamp": stamp,
            },
        )
        return {"status": "completed", "reply": generated["text"], "timestamp": stamp}

    return variant


def variant_registry(workflow: Callable[..., Any]) -> Any:
    return engine_registry(DaprWorkflowRuntime({WORKFLOW_NAME: workflow}, {}))


def test_the_same_shape_reading_the_context_clock_replays() -> None:
    registry = variant_registry(turn_variant(lambda ctx: ctx.current_utc_datetime.isoformat()))
    replay(registry, record(registry, WORKFLOW_NAME, TURN, activities=fakes()))


@pytest.mark.parametrize(
    "read",
    [
        pytest.param(lambda ctx: datetime.now(UTC).isoformat(timespec="microseconds"), id="datetime.now"),
        pytest.param(lambda ctx: uuid.uuid4().hex, id="uuid4"),
        pytest.param(lambda ctx: random.random(), id="random"),
    ],
)
def test_reading_the_clock_or_randomness_in_the_body_fails_replay(read: Callable[[Any], Any]) -> None:
    registry = variant_registry(turn_variant(read))
    rec = record(registry, WORKFLOW_NAME, TURN, activities=fakes())
    with pytest.raises(ReplayMismatch, match="decided differently on replay"):
        replay(registry, rec)


def test_branching_on_state_outside_the_history_is_refused_by_the_engine() -> None:
    calls = {"n": 0}  # e.g. a module global, a cache or a database read in the body

    def variant(ctx: Any, turn: dict[str, Any]) -> Any:
        calls["n"] += 1
        first = "fetch_message_count" if calls["n"] == 1 else "load_history"
        yield ctx.call_activity(first, input={"user_id": turn["user_id"], "limit": 1})
        yield ctx.call_activity("store_turn", input={"user_id": turn["user_id"]})
        return {"status": "completed"}

    registry = variant_registry(variant)
    with pytest.raises(ReplayMismatch, match="fetch_message_count"):
        record(registry, WORKFLOW_NAME, TURN, activities=fakes())
