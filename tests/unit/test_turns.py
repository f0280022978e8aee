"""A chat turn end to end on fakes of the counters, bus and model (SQLite file for storage)."""

from __future__ import annotations

import time

import pytest

from daca_kit.core.workflow import REJECTED_REPLY, TIMED_OUT_REPLY
from daca_kit.errors import AlreadyDecided, InputError, NotFound, RateLimited
from tests.support.fakes import failing_model
from tests.unit.conftest import settle


def test_plain_message_is_answered_stored_published_and_counted(make_kit, fakes) -> None:
    kit = make_kit()
    fakes["counters"].set("alice", 5)
    result = kit.chat_sync("alice", "Hello there")
    assert result.status == "completed"
    assert result.reply == "reply #1 to Hello there"
    assert result.message_count == 5
    settle(kit)
    [row] = kit.conversations("alice")
    assert (row["message"], row["reply"]) == ("Hello there", "reply #1 to Hello there")
    [event] = fakes["bus"].sent["messages"]
    assert event["type"] == "MessageSent" and event["data"]["user_id"] == "alice"
    assert fakes["counters"].values["alice"] == 6
    assert kit.turn(result.instance_id).status == "completed"


def test_model_sees_count_and_bounded_history_oldest_first(make_kit, fakes) -> None:
    kit = make_kit(history_turns=3)
    for i in range(5):
        kit.chat_sync("bob", f"message {i}")
    settle(kit)
    kit.chat_sync("bob", "latest")
    request = fakes["llm"].requests[-1]
    assert [t.message for t in request.history] == ["message 2", "message 3", "message 4"]
    assert request.message_count == 5


def test_sensitive_message_waits_for_review_then_approval_completes(make_kit, fakes) -> None:
    kit = make_kit()
    pending = kit.chat_sync("bob", "This is an urgent request!", wait=0)
    assert pending.status == "pending_review" and pending.reply is None
    [review] = kit.reviews.pending()
    assert review["instance_id"] == pending.instance_id
    assert review["proposed_reply"] == "reply #1 to This is an urgent request!"
    settle(kit)
    assert [e["type"] for e in fakes["bus"].sent["human-review"]] == ["HumanReviewRequired"]
    assert kit.conversations("bob") == []

    decided = kit.reviews.decide(pending.instance_id, approved=True, reviewer="reviewer")
    assert decided["status"] == "approved" and decided["edited"] is False
    done = kit.wait_turn_sync(pending.instance_id, 5)
    assert done.status == "completed" and done.reply == review["proposed_reply"]
    settle(kit)
    assert [r["reply"] for r in kit.conversations("bob")] == [review["proposed_reply"]]
    assert fakes["counters"].values["bob"] == 1
    assert kit.reviews.pending() == []


def test_edited_approval_replaces_the_reply_and_is_audited(make_kit) -> None:
    kit = make_kit()
    pending = kit.submit("carol", "emergency at home")
    kit.reviews.decide(pending.instance_id, approved=True, reply="A human wrote this.", reviewer="reviewer")
    done = kit.wait_turn_sync(pending.instance_id, 5)
    assert done.reply == "A human wrote this."
    [audit] = kit.reviews.decided()
    assert audit["edited"] is True and audit["decided_by"] == "reviewer" and audit["decided_at"]
    assert kit.conversations("carol")[0]["reply"] == "A human wrote this."


def test_rejection_answers_with_the_sentence_and_stores_nothing(make_kit, fakes) -> None:
    kit = make_kit()
    pending = kit.submit("dave", "HELP")
    kit.reviews.decide(pending.instance_id, approved=False, reason="off topic")
    done = kit.wait_turn_sync(pending.instance_id, 5)
    assert (done.status, done.reply) == ("rejected", REJECTED_REPLY)
    settle(kit)
    assert kit.conversations("dave") == []
    assert fakes["bus"].sent["messages"] == []
    assert kit.reviews.decided()[0]["reason"] == "off topic"


def test_review_times_out_with_a_clear_reply(make_kit) -> None:
    kit = make_kit(review_timeout="300ms")
    pending = kit.submit("erin", "urgent")
    done = kit.wait_turn_sync(pending.instance_id, 5)
    assert (done.status, done.reply) == ("timed_out", TIMED_OUT_REPLY)
    assert kit.conversations("erin") == []
    assert kit.reviews.get(pending.instance_id)["status"] == "timed_out"
    with pytest.raises(AlreadyDecided):
        kit.reviews.decide(pending.instance_id, approved=True)


def test_second_decision_is_refused_and_unknown_id_is_not_found(make_kit) -> None:
    kit = make_kit()
    pending = kit.submit("frank", "urgent")
    kit.reviews.decide(pending.instance_id, approved=True)
    with pytest.raises(AlreadyDecided):
        kit.reviews.decide(pending.instance_id, approved=False)
    with pytest.raises(NotFound):
        kit.reviews.decide("no-such-id", approved=True)
    assert kit.wait_turn_sync(pending.instance_id, 5).status == "completed"
    assert len(kit.conversations("frank")) == 1


def test_model_failure_fails_the_turn_clearly_and_stores_nothing(make_kit) -> None:
    kit = make_kit(llm=failing_model())
    result = kit.chat_sync("gina", "hello")
    assert result.status == "failed"
    assert "GEMINI_MODEL" in result.error
    assert result.reply is None
    assert kit.conversations("gina") == []


def test_counters_down_degrades_to_unknown_count_and_chat_still_answers(make_kit, fakes) -> None:
    kit = make_kit()
    fakes["counters"].down = True
    result = kit.chat_sync("hank", "hello")
    assert result.status == "completed"
    assert fakes["llm"].requests[-1].message_count is None
    # The event stays in the outbox until the counters come back, then it is counted once.
    fakes["counters"].down = False
    assert kit.relay is not None
    kit.relay.backoff_min = 0.01
    deadline = time.monotonic() + 5
    while fakes["counters"].values.get("hank") != 1 and time.monotonic() < deadline:
        kit.relay.wake()
        time.sleep(0.05)
    assert fakes["counters"].values.get("hank") == 1


def test_broker_down_keeps_events_in_the_outbox_until_it_returns(make_kit, fakes) -> None:
    kit = make_kit()
    fakes["bus"].down = True
    for i in range(3):
        assert kit.chat_sync("ivy", f"m{i}").status == "completed"
    time.sleep(0.2)
    assert kit.stores.outbox.size() == 3
    fakes["bus"].down = False
    kit.relay.backoff_min = 0.01
    deadline = time.monotonic() + 5
    while kit.stores.outbox.size() and time.monotonic() < deadline:
        kit.relay.wake()
        time.sleep(0.05)
    assert fakes["counters"].values["ivy"] == 3
    assert len(fakes["bus"].sent["messages"]) == 3


@pytest.mark.parametrize(
    ("user_id", "text"),
    [
        ("", "hi"),
        ("bad user", "hi"),
        ("x" * 65, "hi"),
        ("ok", ""),
        ("ok", "   "),
        ("ok", "x" * 4001),
        (7, "hi"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(make_kit, fakes, user_id, text) -> None:
    kit = make_kit()
    with pytest.raises(InputError):
        kit.submit(user_id, text)
    assert fakes["llm"].requests == []
    assert kit.stores.outbox.size() == 0


def test_rate_limit_per_user(make_kit) -> None:
    kit = make_kit(rate_limit="2/minute")
    kit.submit("jack", "one")
    kit.submit("jack", "two")
    with pytest.raises(RateLimited) as info:
        kit.submit("jack", "three")
    assert info.value.retry_after >= 1
    kit.submit("kate", "one")  # other users are not affected


def test_initialize_and_reset_counts(make_kit, fakes) -> None:
    kit = make_kit()
    kit.initialize_count("alice", 5)
    kit.initialize_count("bob", 3)
    assert kit.message_count("alice") == 5
    assert kit.reset_counts() == 2
    assert kit.message_count("bob") == 0
    assert kit.reset_counts() == 0  # idempotent
    with pytest.raises(InputError):
        kit.initialize_count("alice", -1)
