"""The Chat tab in headless Chromium streams: the reply grows in its bubble while the offline model writes
it word by word (DACA_OFFLINE_CHUNK_DELAY), before the whole reply is there; a sensitive message still
shows the waiting bubble and no piece of its reply."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import LiveApp, serve_live
from tests.e2e.test_ui_browser import TIMEOUT, open_page, send

pytestmark = pytest.mark.browser

# Records the chat's text at every change of the page, so that the test sees what a person would have seen.
WATCH_CHAT = """() => {
  window.__chatSeen = [];
  const chat = document.querySelector('#chatbot');
  new MutationObserver(() => window.__chatSeen.push(chat.innerText))
    .observe(chat, {subtree: true, childList: true, characterData: true});
}"""


@pytest.fixture
def slow_writer(settings_factory: Any) -> Iterator[LiveApp]:
    with serve_live(settings_factory(offline_chunk_delay=0.08)) as app:
        yield app


def test_the_reply_grows_in_its_bubble_before_it_is_complete(slow_writer: LiveApp, chromium: Any) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT)
    page = open_page(chromium, slow_writer.url)
    chat = page.locator("#chatbot")
    page.evaluate(WATCH_CHAT)
    send(page, "Hello! What can you do?")
    expect(chat).to_contain_text("[offline reply]")
    seen: list[str] = page.evaluate("window.__chatSeen")
    partial = [text for text in seen if "This is the start" in text and "[offline reply]" not in text]
    assert partial, "the reply appeared only when it was complete"
    user_id = page.locator("#chat-user input").input_value()
    # The last piece reaches the bubble a moment before the turn's row is committed.
    deadline = time.monotonic() + 10
    while not slow_writer.kit.conversations(user_id) and time.monotonic() < deadline:
        time.sleep(0.05)
    [stored] = slow_writer.kit.conversations(user_id)
    expect(chat).to_contain_text(stored["reply"])  # the bubble ends as the stored reply, whole

    page.evaluate(WATCH_CHAT)
    send(page, "This is an urgent request!")
    expect(chat).to_contain_text("Waiting for a human reviewer")
    seen = page.evaluate("window.__chatSeen")
    assert not any("You have sent 1 message" in text for text in seen)  # no piece of the held reply
