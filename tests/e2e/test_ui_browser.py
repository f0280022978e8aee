"""Two people in headless Chromium: a user whose sensitive message waits, and a reviewer who edits
and approves it; the user's page shows the edited reply without a reload. Screenshots of every tab go
to test-artifacts/ (ui-*.png)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import LiveApp

pytestmark = pytest.mark.browser

SENSITIVE = "This is an urgent request!"
EDITED = "A reviewer read your message: someone from the team will contact you within the hour."
TIMEOUT = 20_000  # ms; generous for a loaded CI machine


def open_page(browser: Any, url: str) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    page.goto(url)
    page.locator("#chat-message textarea").wait_for()
    return page


def send(page: Any, text: str) -> None:
    box = page.locator("#chat-message textarea")
    box.fill(text)
    box.press("Enter")


def test_reviewer_edits_and_approves_while_the_user_waits(
    live_app: LiveApp, chromium: Any, artifacts: Path
) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT)

    # Page A: a new user. The id is made up and kept for this browser; the first reply comes back.
    user = open_page(chromium, live_app.url)
    expect(user.locator("#chat-user input")).to_have_value(re.compile(r"^guest-[0-9a-f]{6}$"))
    user_id = user.locator("#chat-user input").input_value()
    chat = user.locator("#chatbot")
    send(user, "Hello! What can you do?")
    expect(chat).to_contain_text("[offline reply]")
    expect(user.locator("#chat-count")).to_contain_text(f"{user_id}: 1")

    send(user, SENSITIVE)
    expect(chat).to_contain_text("Waiting for a human reviewer")
    expect(user.locator("#chat-status")).to_contain_text("1 message is waiting for a human reviewer")
    user.screenshot(path=str(artifacts / "ui-chat-waiting.png"), full_page=True)

    # Page B: another person opens Review. Nothing pending is shown before the login.
    reviewer = open_page(chromium, live_app.url)
    reviewer.get_by_role("tab", name="Review").click()
    expect(reviewer.locator("#review-password input")).to_be_visible()
    expect(reviewer.locator("#review-pending")).to_be_hidden()
    reviewer.screenshot(path=str(artifacts / "ui-review-login.png"), full_page=True)

    reviewer.locator("#review-password input").fill("not the password")
    reviewer.locator("#review-login").click()
    expect(reviewer.get_by_text("Wrong reviewer password.")).to_be_visible()
    expect(reviewer.locator("#review-pending")).to_be_hidden()

    reviewer.locator("#review-password input").fill(live_app.reviewer_password)
    reviewer.locator("#review-login").click()
    pending = reviewer.locator("#review-pending")
    expect(pending).to_contain_text(SENSITIVE)
    expect(pending).to_contain_text(user_id)
    pending.get_by_test_id("cell-0-2").click()
    reply = reviewer.locator("#review-reply textarea")
    expect(reply).to_have_value(re.compile(r"\[offline reply\]"))
    reply.fill(EDITED)
    reviewer.screenshot(path=str(artifacts / "ui-review-selected.png"), full_page=True)
    reviewer.locator("#review-approve").click()

    audit = reviewer.locator("#review-audit")
    expect(audit).to_contain_text("approved")
    expect(pending).not_to_contain_text(SENSITIVE)
    reviewer.screenshot(path=str(artifacts / "ui-review-decided.png"), full_page=True)

    # Page A, untouched since: the edited reply replaces the waiting state by itself.
    expect(chat).to_contain_text(EDITED)
    expect(chat).not_to_contain_text("Waiting for a human reviewer")
    expect(user.locator("#chat-status")).not_to_contain_text("waiting")
    expect(user.locator("#chat-count")).to_contain_text(f"{user_id}: 2")
    user.screenshot(path=str(artifacts / "ui-chat-approved.png"), full_page=True)

    # A reload keeps the user id (browser storage) and shows the stored history, oldest first.
    user.reload()
    expect(user.locator("#chat-user input")).to_have_value(user_id)
    expect(chat).to_contain_text(EDITED)
    texts = chat.inner_text()
    assert texts.index("Hello! What can you do?") < texts.index(EDITED)

    # Usage, as the logged-in reviewer sees it (per-user counts) and as the public sees it.
    reviewer.get_by_role("tab", name="Usage").click()
    expect(reviewer.locator("#usage-note")).to_contain_text("All parts run embedded")
    expect(reviewer.get_by_text("Messages per user")).to_be_visible()
    expect(reviewer.locator("body")).to_contain_text("SQLite file (embedded)")
    expect(reviewer.locator("#usage-reach")).to_contain_text("nothing to check: every part runs embedded")
    reviewer.screenshot(path=str(artifacts / "ui-usage.png"), full_page=True)
    user.get_by_role("tab", name="Usage").click()
    expect(user.locator("#usage-note")).to_contain_text("All parts run embedded")
    expect(user.get_by_text("Log in on the Review tab to see the count of each user.")).to_be_visible()
    assert live_app.reviewer_password not in user.content()
