"""Two people in headless Chromium: a user whose sensitive message waits, and a reviewer who edits
and approves it; the user's page shows the edited reply without a reload. Screenshots of every tab go
to test-artifacts/ (ui-*.png)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import LiveApp
from tests.support.appproc import AppProcess
from tests.support.hub_stub import HubStub

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
    expect(user.locator("#chat-user input")).to_have_value(re.compile(r"^guest-[0-9a-f]{16}@daca$"))
    expect(user.locator("#chat-user input")).not_to_be_editable()  # bound to this browser
    user_id = user.locator("#chat-user input").input_value()
    chat = user.locator("#chatbot")
    send(user, "Hello! What can you do?")
    expect(chat).to_contain_text("[offline reply]")
    expect(user.locator("#chat-count")).to_contain_text(f"{user_id}: 1")

    send(user, SENSITIVE)
    expect(chat).to_contain_text("Waiting for a human reviewer")
    expect(user.locator("#chat-status")).to_contain_text("1 message is waiting for a human reviewer")
    user.screenshot(path=str(artifacts / "ui-chat-waiting.png"), full_page=True)

    # Page B: another person (another browser) gets another id, and none of A's history.
    reviewer = open_page(chromium, live_app.url)
    expect(reviewer.locator("#chat-user input")).to_have_value(re.compile(r"@daca$"))
    assert reviewer.locator("#chat-user input").input_value() != user_id
    expect(reviewer.locator("#chatbot")).not_to_contain_text("What can you do?")
    # B opens Review. Nothing pending is shown before the login.
    reviewer.get_by_role("tab", name="Review").click()
    expect(reviewer.locator("#review-password input")).to_be_visible()
    expect(reviewer.locator("#review-pending")).to_be_hidden()
    reviewer.screenshot(path=str(artifacts / "ui-review-login.png"), full_page=True)

    reviewer.locator("#review-password input").fill("not the password")
    reviewer.locator("#review-login").click()
    expect(reviewer.get_by_text("Wrong reviewer name or password.")).to_be_visible()
    expect(reviewer.locator("#review-pending")).to_be_hidden()

    reviewer.locator("#review-password input").fill(live_app.reviewer_password)
    reviewer.locator("#review-login").click()
    pending = reviewer.locator("#review-pending")
    expect(reviewer.locator("#review-who")).to_contain_text("reviewer")
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


BOB_PW = "bob-long-password-22"


def test_named_reviewers_sign_in_as_themselves_and_stay_signed_in_across_a_restart(
    tmp_path: Path, chromium: Any, artifacts: Path
) -> None:
    """One reviewer signs in with Hugging Face (Gradio's local OAuth mock, whose Hub is a local stub),
    another with a name and password; each decision shows its reviewer; a restart logs nobody out."""
    import httpx
    from playwright.sync_api import expect

    from daca_kit.web.passwords import hash_password

    expect.set_options(timeout=TIMEOUT)
    env = {
        "DACA_REVIEWERS": f"hf-alice,bob:{hash_password(BOB_PW)}",
        "HF_TOKEN": "hf_local_test_token",
        "DACA_REVIEW_TIMEOUT": "1h",
    }
    with HubStub(user="hf-alice", fullname="Alice Example") as hub:
        env["HF_ENDPOINT"] = hub.url
        with AppProcess(tmp_path, ui=True, env=env) as app:  # type: ignore[arg-type]
            for user in ("u-one", "u-two"):
                held = httpx.post(app.url("/chat/?wait=0"), json={"user_id": user, "text": SENSITIVE})
                assert held.status_code == 202

            # Alice: Sign in with Hugging Face; back on the page, the Review tab knows her.
            alice = open_page(chromium, app.base_url)
            alice.get_by_role("tab", name="Review").click()
            expect(alice.locator("#review-pending")).to_be_hidden()
            alice.locator("#review-hf-login").click()
            alice.wait_for_url(re.compile(r"^http://127\.0\.0\.1:\d+/(\?.*)?$"))
            alice.locator("#chat-message textarea").wait_for()
            alice.get_by_role("tab", name="Review").click()
            expect(alice.locator("#review-who")).to_contain_text("hf-alice")
            expect(alice.locator("#review-who")).to_contain_text("Hugging Face")
            pending = alice.locator("#review-pending")
            expect(pending).to_contain_text("u-one")
            alice.screenshot(path=str(artifacts / "ui-review-hf-signed-in.png"), full_page=True)
            pending.get_by_test_id("cell-0-2").click()
            alice.locator("#review-approve").click()
            expect(alice.locator("#review-audit")).to_contain_text("hf-alice")

            # Bob: his own name and password.
            bob = open_page(chromium, app.base_url)
            bob.get_by_role("tab", name="Review").click()
            bob.locator("#review-name input").fill("bob")
            bob.locator("#review-password input").fill("not bob's password")
            bob.locator("#review-login").click()
            expect(bob.get_by_text("Wrong reviewer name or password.")).to_be_visible()
            bob.locator("#review-password input").fill(BOB_PW)
            bob.locator("#review-login").click()
            expect(bob.locator("#review-who")).to_contain_text("bob")
            bob_pending = bob.locator("#review-pending")
            expect(bob_pending).to_contain_text("u-two")
            bob_pending.get_by_test_id("cell-0-2").click()
            bob.locator("#review-reject").click()
            audit = bob.locator("#review-audit")
            expect(audit).to_contain_text("bob")
            expect(audit).to_contain_text("hf-alice")

            # A restart logs nobody out: both pages, reloaded, show the Review tab signed in.
            app.restart()
            for page, name in ((bob, "bob"), (alice, "hf-alice")):
                reload_after_restart(page)
                page.locator("#chat-message textarea").wait_for()
                page.get_by_role("tab", name="Review").click()
                expect(page.locator("#review-who")).to_contain_text(name)
                expect(page.locator("#review-audit")).to_contain_text("u-two")
                expect(page.locator("#review-password input")).to_be_hidden()
            bob.screenshot(path=str(artifacts / "ui-review-after-restart.png"), full_page=True)

            decided = httpx.get(app.url("/reviews?status=decided"), auth=("bob", BOB_PW)).json()
            assert sorted(r["decided_by"] for r in decided) == ["bob", "hf-alice"]
            assert BOB_PW not in app.output()


def reload_after_restart(page) -> None:
    """Reloads a page whose server restarted: Gradio's own reconnect may abort the first navigation."""
    from playwright.sync_api import Error

    for attempt in range(3):
        try:
            page.reload()
            return
        except Error as exc:
            if "ERR_ABORTED" not in str(exc) or attempt == 2:
                raise
            page.wait_for_timeout(500)
