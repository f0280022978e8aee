"""Streaming turns on fakes: pieces while the model writes, then one final event; the recorded reply is the
whole reply on the local runtime and on Dapr's engine; a sensitive turn sends no piece; the pieces reach
only the process that runs the turn; the offline model writes word by word at DACA_OFFLINE_CHUNK_DELAY."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from daca_kit.adapters.inprocess import InProcessReplyChannel
from daca_kit.adapters.offline import OfflineReplyModel, words
from daca_kit.bootstrap import build_model
from daca_kit.core.kit import Kit
from daca_kit.core.models import ReplyRequest
from daca_kit.core.streaming import StreamEvent, stream_turn
from daca_kit.errors import RateLimited
from daca_kit.settings import Settings
from tests.support.fakes import failing_model
from tests.support.replay import EngineWorkflowClient


def run(kit: Kit, user_id: str, text: str, **kwargs: Any) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    stream_turn(kit, events.append, user_id, text, **kwargs)
    return events


def pieces(events: list[StreamEvent]) -> str:
    return "".join(e.data["text"] for e in events if e.kind == "token")


def test_pieces_then_done_and_the_whole_reply_is_what_is_stored(make_kit) -> None:
    kit = make_kit()
    events = run(kit, "alice", "hello there", metadata={"session_id": "s1"})
    assert [e.kind for e in events] == ["token"] * 5 + ["done"]
    done = events[-1]
    assert done.data["reply"] == pieces(events) == "reply #1 to hello there"
    assert done.data == done.result.chat_body() if done.result else False
    assert done.data["metadata"]["session_id"] == "s1"
    [stored] = kit.conversations("alice")
    assert stored["reply"] == "reply #1 to hello there"
    assert kit.activities.replies is not None
    assert not kit.activities.replies.listening(done.data["metadata"]["instance_id"])


def test_a_sensitive_turn_sends_no_piece_and_waits(make_kit) -> None:
    kit = make_kit()
    [held] = run(kit, "bob", "this is urgent")
    assert held.kind == "pending_review" and held.data["status"] == "pending_review"
    [review] = kit.reviews.pending()
    assert review["instance_id"] == held.data["instance_id"] and review["proposed_reply"]


def test_a_failing_model_ends_in_error_with_its_sentence(make_kit) -> None:
    kit = make_kit(llm=failing_model())
    [failed] = run(kit, "carol", "hello")
    assert failed.kind == "error" and "GEMINI_MODEL" in failed.data["detail"]
    assert kit.conversations("carol") == []


def test_a_refused_turn_carries_the_kits_exception_and_leaves_nothing(make_kit) -> None:
    kit = make_kit(rate_limit="1/minute")
    run(kit, "dave", "one")
    [refused] = run(kit, "dave", "two")
    assert refused.kind == "refused" and isinstance(refused.error, RateLimited)
    assert "Too many messages from dave" in refused.data["detail"]
    assert len(kit.conversations("dave")) == 1


def test_a_listener_that_fails_does_not_fail_the_turn(make_kit) -> None:
    kit = make_kit()

    def deaf(event: StreamEvent) -> None:
        if event.kind == "token":
            raise ConnectionError("the page went away")

    result = stream_turn(kit, deaf, "erin", "hello")
    assert result is not None and result.status == "completed"
    assert [t["reply"] for t in kit.conversations("erin")] == ["reply #1 to hello"]


class Overheard(InProcessReplyChannel):
    """A reply channel that notes every piece published on it."""

    def __init__(self) -> None:
        super().__init__()
        self.published: list[tuple[str, str]] = []

    def publish(self, instance_id: str, text: str) -> None:
        self.published.append((instance_id, text))
        super().publish(instance_id, text)


def test_pieces_reach_only_the_process_that_runs_the_turn(make_kit, settings_factory) -> None:
    """Two app processes on one database (two kits here): the turn started by A runs its model activity in
    A, so A's listener hears it and B's channel never carries a piece of it."""
    kit_a = make_kit()
    kit_b = make_kit()  # the same database file: another worker process of the same app
    assert kit_a.settings.database_url == kit_b.settings.database_url
    kit_b.activities.replies = channel_b = Overheard()
    events = run(kit_a, "frank", "hello from A")
    assert pieces(events) == "reply #1 to hello from A" and events[-1].kind == "done"
    assert channel_b.published == []
    assert [t["message"] for t in kit_b.conversations("frank")] == ["hello from A"]  # shared database


def test_on_dapr_workflow_the_engine_records_the_whole_reply(
    engine_kit: tuple[Kit, EngineWorkflowClient],
) -> None:
    kit, _client = engine_kit
    events = run(kit, "gina", "hello dapr")
    assert events[-1].kind == "done"
    assert pieces(events) == events[-1].data["reply"] == "reply #1 to hello dapr"
    instance_id = events[-1].data["metadata"]["instance_id"]
    state = kit.runtime.get(instance_id)
    assert state is not None and (state.output or {})["reply"] == "reply #1 to hello dapr"


# -- the offline model ------------------------------------------------------------------------------
def offline_request() -> ReplyRequest:
    return ReplyRequest(user_id="hana", text="Tell me something", message_count=2)


def test_the_offline_model_streams_the_reply_it_would_give_word_by_word() -> None:
    model = OfflineReplyModel()
    got: list[str] = []
    streamed = model.stream(offline_request(), got.append)
    whole = model.generate(offline_request())
    assert streamed == whole and "".join(got) == whole.text
    assert got == words(whole.text) and len(got) > 10
    assert all(piece.strip() and " " not in piece.strip() for piece in got)


def test_offline_chunk_delay_paces_each_word_streamed_or_not() -> None:
    assert Settings(_env_file=None).offline_chunk_delay == 0  # type: ignore[call-arg]
    model = build_model(Settings(_env_file=None, DACA_OFFLINE_CHUNK_DELAY="0.01"))  # type: ignore[call-arg]
    assert isinstance(model, OfflineReplyModel) and model.chunk_delay == 0.01
    arrivals: list[float] = []
    started = time.perf_counter()
    reply = model.stream(offline_request(), lambda _piece: arrivals.append(time.perf_counter()))
    count = len(words(reply.text))
    assert arrivals[0] - started >= 0.01 and arrivals[-1] - started >= 0.01 * count
    started = time.perf_counter()
    model.generate(offline_request())
    assert time.perf_counter() - started >= 0.01 * count  # the same pace when nobody listens
    with pytest.raises(ValueError):
        Settings(_env_file=None, DACA_OFFLINE_CHUNK_DELAY="-0.1")  # type: ignore[call-arg]


def test_stream_events_are_json() -> None:
    event = StreamEvent("token", {"text": "Hé "})
    assert json.loads(json.dumps(event.data)) == {"text": "Hé "} and not event.final
    assert StreamEvent("done", {}).final
