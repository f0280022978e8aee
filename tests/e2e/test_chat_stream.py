"""POST /chat/stream over real HTTP (uvicorn on loopback), read with httpx streaming: tokens arrive while
the model writes, before the final event; a sensitive turn is held without tokens; a failing model ends
in an `error` event; refusals are plain HTTP answers; a client that leaves does not change the turn."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import LiveApp, serve_live
from tests.support.appproc import eventually
from tests.support.fakes import FakeCounters, failing_model

CHUNK_DELAY = 0.05  # seconds before each word of the offline reply


@pytest.fixture
def stream_app(settings_factory: Any) -> Iterator[LiveApp]:
    with serve_live(settings_factory(offline_chunk_delay=CHUNK_DELAY), with_ui=False) as app:
        yield app


def events(response: httpx.Response) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event, data) pairs of a text/event-stream response, as they arrive."""
    kind = "message"
    for line in response.iter_lines():
        if line.startswith("event: "):
            kind = line[len("event: ") :]
        elif line.startswith("data: "):
            yield kind, json.loads(line[len("data: ") :])
            kind = "message"


def post_stream(client: httpx.Client, body: dict[str, Any]) -> Any:
    return client.stream("POST", "/chat/stream", json=body)


def all_events(client: httpx.Client, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every event of one streaming turn, read to its end (the answer must be a stream)."""
    with post_stream(client, body) as response:
        assert response.status_code == 200
        return list(events(response))


def test_tokens_arrive_while_the_reply_is_written_then_done_has_the_chat_body(stream_app: LiveApp) -> None:
    kit = stream_app.kit
    with httpx.Client(base_url=stream_app.url, timeout=30) as client:
        with post_stream(
            client, {"user_id": "alice", "text": "Hello there!", "metadata": {"session_id": "s1"}}
        ) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            received = events(r)
            kind, first = next(received)
            assert kind == "token" and first["text"]
            # The first piece is here while the turn is still being written: nothing is stored yet.
            assert kit.conversations("alice") == []
            rest = list(received)
        plain = client.post("/chat/", json={"user_id": "alice", "text": "Hello again"}).json()

    kinds = [k for k, _ in rest]
    assert kinds[-1] == "done" and set(kinds[:-1]) == {"token"} and len(kinds) > 3
    done = rest[-1][1]
    tokens = first["text"] + "".join(d["text"] for k, d in rest if k == "token")
    assert set(done) == set(plain) == {"user_id", "reply", "metadata"}  # POST /chat/'s 200 body
    assert done["reply"] == tokens and "[offline reply]" in tokens
    assert done["metadata"]["status"] == "completed" and done["metadata"]["session_id"] == "s1"
    [stored] = [t for t in kit.conversations("alice") if t["message"] == "Hello there!"]
    assert stored["reply"] == done["reply"]


def test_a_sensitive_turn_is_held_without_a_single_token(stream_app: LiveApp) -> None:
    with httpx.Client(base_url=stream_app.url, timeout=30) as client:
        [(kind, data)] = all_events(client, {"user_id": "bob", "text": "This is an urgent request!"})
        assert kind == "pending_review"
        assert data["status"] == "pending_review" and data["user_id"] == "bob"
        assert client.get(f"/chat/{data['instance_id']}").json()["status"] == "pending_review"
    [review] = stream_app.kit.reviews.pending()
    assert review["instance_id"] == data["instance_id"]


def test_a_failing_model_ends_the_stream_with_its_sentence(settings_factory: Any) -> None:
    with serve_live(settings_factory(), with_ui=False, llm=failing_model()) as app:
        with httpx.Client(base_url=app.url, timeout=30) as client:
            [(kind, data)] = all_events(client, {"user_id": "carol", "text": "Hello"})
    assert kind == "error"
    assert data["detail"].startswith("GEMINI_MODEL 'x' was not found")
    assert data["status"] == "failed" and data["instance_id"]


def test_refusals_are_plain_http_answers_before_any_stream(settings_factory: Any) -> None:
    with serve_live(settings_factory(rate_limit="1/minute"), with_ui=False) as app:
        with httpx.Client(base_url=app.url, timeout=30) as client:
            bad = client.post("/chat/stream", json={"user_id": "dave", "text": "   "})
            assert bad.status_code == 422 and bad.headers["content-type"] == "application/json"
            assert "text" in bad.json()["detail"].lower()
            missing = client.post("/chat/stream", json={"user_id": "dave"})
            assert missing.status_code == 422
            bound = client.post("/chat/stream", json={"user_id": "guest-0123456789abcdef@daca", "text": "hi"})
            assert bound.status_code == 401
            mine, theirs = client.post("/users").json(), client.post("/users").json()
            as_other = {"Authorization": f"Bearer {theirs['token']}"}
            wrong = client.post(
                "/chat/stream", json={"user_id": mine["user_id"], "text": "hi"}, headers=as_other
            )
            assert wrong.status_code == 403
            with client.stream(
                "POST",
                "/chat/stream",
                json={"user_id": mine["user_id"], "text": "hi"},
                headers={"Authorization": f"Bearer {mine['token']}"},
            ) as own:
                assert [k for k, _ in events(own)][-1] == "done"
            assert all_events(client, {"user_id": "dave", "text": "one"})[-1][0] == "done"
            limited = client.post("/chat/stream", json={"user_id": "dave", "text": "two"})
            assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
            assert "Too many messages from dave" in limited.json()["detail"]
        assert len(app.kit.conversations("dave")) == 1  # the refused turns left nothing behind


def test_a_client_that_leaves_mid_stream_still_gets_its_turn_stored_and_counted_once(
    settings_factory: Any,
) -> None:
    counters = FakeCounters()
    with serve_live(settings_factory(offline_chunk_delay=0.1), with_ui=False, counters=counters) as app:
        kit = app.kit
        with httpx.Client(base_url=app.url, timeout=30) as client:
            with post_stream(client, {"user_id": "erin", "text": "Tell me a long story"}) as r:
                kind, _ = next(events(r))
                assert kind == "token"
            # The connection is closed here, with most of the reply still to come.
            assert kit.conversations("erin") == []
        eventually(lambda: len(kit.conversations("erin")) == 1, timeout=20)
        assert kit.relay is not None
        kit.relay.wait_idle(5)
        time.sleep(0.3)  # room for a second store or count, were there one
        [stored] = kit.conversations("erin")
        assert stored["reply"].endswith("[offline reply]")  # the whole reply, not the part that was sent
        assert kit.message_count("erin") == 1
        assert kit.turns_completed == 1
