"""POST /chat/stream while Gemini fails, through a TCP proxy that refuses, blackholes or resets: the
stream ends in an `error` event with a sentence within GEMINI_TIMEOUT (plus a margin), whether Gemini
failed before the first piece or in the middle of the reply; nothing is stored; the next turn streams
once Gemini is back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import LiveApp, serve_live
from tests.e2e.test_chat_stream import all_events, events, post_stream
from tests.integration.test_gemini import _no_proxies  # noqa: F401 - autouse: loopback without proxies
from tests.support.gemini_stub import GeminiStub
from tests.support.tcpproxy import MODES, Mode, TcpProxy

KEY = "AIzaSy-stream-fault-key"
MODEL = "gemini-test-flash"
GEMINI_TIMEOUT = 3.0
BOUND = GEMINI_TIMEOUT + 4.0  # seconds: the setting, plus room for a loaded machine


@pytest.fixture
def gemini_behind_proxy(settings_factory: Any) -> Iterator[tuple[LiveApp, TcpProxy]]:
    with GeminiStub(api_key=KEY, models={MODEL}, chunk_delay=0.2) as stub:
        with TcpProxy("127.0.0.1", int(stub.base_url.rsplit(":", 1)[1])) as proxy:
            settings = settings_factory(
                gemini_api_key=KEY,
                gemini_model=MODEL,
                gemini_base_url=proxy.wrap_url(stub.base_url),
                gemini_timeout=GEMINI_TIMEOUT,
            )
            with serve_live(settings, with_ui=False) as app:
                yield app, proxy


@pytest.mark.parametrize("mode", MODES)
def test_gemini_down_before_the_reply_ends_the_stream_with_a_sentence(
    gemini_behind_proxy: tuple[LiveApp, TcpProxy], mode: Mode
) -> None:
    app, proxy = gemini_behind_proxy
    proxy.cut(mode)
    with httpx.Client(base_url=app.url, timeout=30) as client:
        started = time.monotonic()
        received = all_events(client, {"user_id": f"u-{mode}", "text": "Hello"})
        elapsed = time.monotonic() - started
        assert [k for k, _ in received] == ["error"], received
        assert "Gemini" in received[0][1]["detail"]
        assert elapsed < BOUND
        proxy.restore()
        assert all_events(client, {"user_id": f"u-{mode}", "text": "Hello again"})[-1][0] == "done"
    assert [t["message"] for t in app.kit.conversations(f"u-{mode}")] == ["Hello again"]


@pytest.mark.parametrize("mode", MODES)
def test_gemini_lost_mid_reply_ends_the_stream_after_its_pieces(
    gemini_behind_proxy: tuple[LiveApp, TcpProxy], mode: Mode
) -> None:
    app, proxy = gemini_behind_proxy
    with httpx.Client(base_url=app.url, timeout=30) as client:
        with post_stream(client, {"user_id": f"m-{mode}", "text": "Tell me more"}) as response:
            received = events(response)
            assert next(received)[0] == "token"
            proxy.cut(mode)
            started = time.monotonic()
            rest = list(received)
            elapsed = time.monotonic() - started
    kind, data = rest[-1]
    assert kind == "error" and "broke off after it had begun" in data["detail"], rest
    assert elapsed < BOUND
    assert app.kit.conversations(f"m-{mode}") == []
