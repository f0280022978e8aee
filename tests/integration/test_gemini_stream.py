"""GeminiReplyModel.stream against the local Gemini protocol server's `:streamGenerateContent?alt=sse`,
which writes the reply word by word with a pause between pieces; and POST /chat/stream on Gemini."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from daca_kit.adapters.gemini import GeminiReplyModel
from daca_kit.errors import ModelError
from tests.e2e.conftest import serve_live
from tests.e2e.test_chat_stream import all_events
from tests.integration.test_gemini import (
    KEY,
    MODEL,
    RecordingSleep,
    _no_proxies,  # noqa: F401 - autouse: loopback without proxies
    make_model,
    request,
)
from tests.support.gemini_stub import GeminiStub

CHUNK_DELAY = 0.1


@pytest.fixture
def stub() -> Iterator[GeminiStub]:
    with GeminiStub(api_key=KEY, models={MODEL}, chunk_delay=CHUNK_DELAY) as running:
        yield running


class Pieces:
    """An on_chunk listener that notes when each piece arrived."""

    def __init__(self) -> None:
        self.received: list[tuple[str, float]] = []

    def __call__(self, text: str) -> None:
        self.received.append((text, time.monotonic()))

    @property
    def text(self) -> str:
        return "".join(t for t, _ in self.received)


def streaming_model(stub: GeminiStub) -> GeminiReplyModel:
    return make_model(stub, RecordingSleep())


def test_pieces_arrive_as_gemini_writes_them(stub: GeminiStub) -> None:
    pieces = Pieces()
    reply = streaming_model(stub).stream(request("What is Dapr Workflow?"), pieces)

    assert reply.text == "stub reply to: What is Dapr Workflow?" == pieces.text.strip()
    assert len(pieces.received) == len(stub.sent) == 7
    # The first piece was in hand before the server had even written its last one.
    assert pieces.received[0][1] < stub.sent[-1][1]
    [sent] = stub.requests
    assert sent.path == f"/v1/models/{MODEL}:streamGenerateContent" and "alt=sse" in sent.query
    assert sent.last_user_text() == "What is Dapr Workflow?"


def test_a_failure_before_the_first_piece_is_retried(stub: GeminiStub) -> None:
    sleep = RecordingSleep()
    model = make_model(stub, sleep)
    stub.plan(503)
    pieces = Pieces()
    reply = model.stream(request("Hello"), pieces)
    assert pieces.text.strip() == reply.text == "stub reply to: Hello"
    assert model.calls == 2 and len(sleep.delays) == 1


def test_a_stream_that_breaks_off_fails_the_reply_without_repeating_it(stub: GeminiStub) -> None:
    model = streaming_model(stub)
    stub.plan("break")
    pieces = Pieces()
    with pytest.raises(ModelError, match="broke off after it had begun"):
        model.stream(request("Hello there"), pieces)
    assert pieces.text == "stub reply "  # the two pieces sent, once each: no retry repeated them
    assert model.calls == 1


def test_a_stream_that_goes_silent_fails_within_gemini_timeout() -> None:
    with GeminiStub(api_key=KEY, models={MODEL}, hold_seconds=20) as stub:
        model = make_model(stub, RecordingSleep(), timeout=1.5)
        stub.plan("stall")
        pieces = Pieces()
        started = time.monotonic()
        with pytest.raises(
            ModelError, match="broke off after it had begun: Gemini did not answer within 1.5 s"
        ):
            model.stream(request("Hello there"), pieces)
        assert time.monotonic() - started < 6  # GEMINI_TIMEOUT bounds the stream, with a margin
        assert pieces.text == "stub reply " and model.calls == 1


def test_refusals_keep_their_sentences_when_streaming(stub: GeminiStub) -> None:
    with pytest.raises(ModelError, match="GEMINI_API_KEY"):
        make_model(stub, RecordingSleep(), api_key="wrong").stream(request(), Pieces())
    with pytest.raises(ModelError, match="GEMINI_MODEL 'retired'"):
        make_model(stub, RecordingSleep(), model="retired").stream(request(), Pieces())


def test_chat_stream_on_gemini_sends_tokens_before_done(stub: GeminiStub, settings_factory: Any) -> None:
    settings = settings_factory(gemini_api_key=KEY, gemini_model=MODEL, gemini_base_url=stub.base_url)
    with serve_live(settings, with_ui=False) as app:
        with httpx.Client(base_url=app.url, timeout=30) as client:
            received = all_events(client, {"user_id": "gina", "text": "Tell me about Spaces"})
    kinds = [k for k, _ in received]
    assert kinds == ["token"] * 7 + ["done"]
    done = received[-1][1]
    assert done["reply"] == "stub reply to: Tell me about Spaces"
    assert "".join(d["text"] for k, d in received if k == "token").strip() == done["reply"]
    assert [r.path.rsplit(":", 1)[-1] for r in stub.requests] == ["streamGenerateContent"]
