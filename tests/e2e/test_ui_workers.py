"""The Chat tab with `WEB_CONCURRENCY=2` in headless Chromium: the page talks to the UI worker through
whichever worker its connections land on, and a review decided on the other worker shows on the page by
itself, at once (the Chat tab's own re-read would come only after 30 s)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.e2e.test_ui_browser import SENSITIVE, TIMEOUT, open_page, send
from tests.support.appproc import AppProcess

pytestmark = pytest.mark.browser


def _connection_to_worker(app: AppProcess, index: int, timeout: float = 60) -> httpx.Client:
    """A keep-alive connection that landed on worker `index` (its requests stay on that worker)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        client = app.client()
        if client.get("/health", headers=app.admin_headers).json()["worker"]["index"] == index:
            return client
        client.close()
    raise AssertionError(f"no connection reached worker {index}")


@pytest.mark.slow  # two workers with the UI, and a browser
def test_a_decision_on_the_other_worker_shows_on_the_chat_page_at_once(
    workers: AppProcess, chromium: Any
) -> None:
    from playwright.sync_api import expect

    app = workers
    rest = _connection_to_worker(app, 1)  # the worker that does not serve the UI
    try:
        user = open_page(chromium, app.base_url)
        chat = user.locator("#chatbot")
        send(user, "Hello there")
        expect(chat).to_contain_text("[offline reply]", timeout=TIMEOUT)
        send(user, SENSITIVE)
        expect(chat).to_contain_text("Waiting for a human reviewer", timeout=TIMEOUT)
        [review] = rest.get("/reviews", auth=app.reviewer_auth).json()
        decided = rest.post(
            f"/reviews/{review['instance_id']}",
            json={"approved": True, "reply": "Decided on the other worker."},
            auth=app.reviewer_auth,
        )
        assert decided.status_code == 200, decided.text
        expect(chat).to_contain_text("Decided on the other worker.", timeout=5_000)
    finally:
        rest.close()
