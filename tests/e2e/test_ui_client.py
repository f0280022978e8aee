"""The Gradio UI's API against a live local server: gradio_client for chat; raw HTTP for the review
functions, which must refuse anyone who has not logged in as the reviewer."""

from __future__ import annotations

import time

import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from daca_kit.web.ui.reviewers import LOGIN_FIRST
from tests.e2e.conftest import GradioSession, LiveApp

CLICK = {"index": [0, 2], "value": "", "selected": True}  # a click on the first row of the pending table
REVIEW_FUNCTIONS = ("review_tick", "review_select", "review_approve", "review_reject")


@pytest.fixture
def client(live_app: LiveApp):
    client = Client(live_app.url, verbose=False, download_files=False)
    yield client
    client.close()


def wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def test_chat_round_trip(client: Client, live_app: LiveApp) -> None:
    done = client.predict("alice", "Hello there", api_name="/chat")
    assert done["status"] == "completed"
    assert 'You said: "Hello there"' in done["reply"]
    assert live_app.kit.conversations("alice")[0]["reply"] == done["reply"]

    held = client.predict("alice", "This is an urgent request!", api_name="/chat")
    assert held["status"] == "pending_review" and held["reply"] is None
    live_app.kit.reviews.decide(held["instance_id"], approved=True, reply="A person will call you today.")
    turn = wait_for(
        lambda: (
            (t := client.predict(held["instance_id"], api_name="/turn"))["status"] != "pending_review" and t
        )
    )
    assert turn["status"] == "completed"
    assert turn["reply"] == "A person will call you today."

    with pytest.raises(AppError, match="user_id must be 1 to 64 characters"):
        client.predict("not a valid id!", "hi", api_name="/chat")


def test_review_functions_are_hidden_and_refused_without_login(client: Client, live_app: LiveApp) -> None:
    held = client.predict("bob", "Emergency: my order is wrong", api_name="/chat")
    assert held["status"] == "pending_review"

    # Hidden from the API docs, and gradio_client will not call them.
    assert set(client.view_api(print_info=False, return_format="dict")["named_endpoints"]) == {
        "/chat",
        "/turn",
    }
    with pytest.raises(ValueError, match="Cannot find a function with `api_name`"):
        client.predict(None, held["instance_id"], "approved by nobody", "", None, api_name="/review_approve")

    # Raw HTTP to Gradio's queue reaches them, and the server refuses: the token slot is the browser's,
    # so anyone can send a value for it, and only a token the server signed opens them.
    anonymous = GradioSession(live_app.url)
    try:
        for name in REVIEW_FUNCTIONS:
            for token in (None, "forged-token"):
                data = [token, held["instance_id"], "approved by nobody", "", None][
                    : len(anonymous.functions[name]["inputs"])
                ]
                done, _ = anonymous.call(name, data, event_data=CLICK)
                if name == "review_tick" and token is not None:
                    # A token that does not verify signs the page out (as an expired one does).
                    assert done["success"] is True and done["output"]["data"][0] is None
                    assert "Emergency" not in str(done["output"]), done
                    continue
                assert done["success"] is False, name
                assert done["output"]["error"] == LOGIN_FIRST, name
        done, logs = anonymous.call("review_login", ["", "wrong password"])
        assert done["success"] is True
        assert [log["log"] for log in logs] == ["Wrong reviewer name or password."]
        done, _ = anonymous.call(
            "review_approve", [None, held["instance_id"], "approved by nobody", "", None]
        )
        assert done["success"] is False
    finally:
        anonymous.close()
    assert live_app.kit.reviews.get(held["instance_id"])["status"] == "pending"
    assert client.predict(held["instance_id"], api_name="/turn")["status"] == "pending_review"


def test_logged_in_reviewers_decide_once(live_app: LiveApp) -> None:
    held = live_app.kit.submit("carol", "I need help with my account")
    assert held.status == "pending_review"
    first, second = GradioSession(live_app.url), GradioSession(live_app.url)
    try:
        tokens = []
        for reviewer in (first, second):
            done, _ = reviewer.call("review_login", ["", live_app.reviewer_password])
            assert done["success"] is True
            tokens.append(done["output"]["data"][0])
            pending = done["output"]["data"][4]
            assert [row[1] for row in pending["data"]] == ["carol"]

        # What was refused anonymously works once logged in; each session keeps its selection server-side.
        for reviewer, token in zip((first, second), tokens, strict=True):
            done, _ = reviewer.call("review_select", [token, None], event_data=CLICK)
            assert done["success"] is True
            assert "I need help with my account" in done["output"]["data"]
        done, logs = first.call("review_approve", [tokens[0], held.instance_id, "We are on it.", "", None])
        assert done["success"] is True, done
        assert "edited reply" in logs[0]["log"]
        done, logs = second.call("review_reject", [tokens[1], held.instance_id, "", "spam", None])
        assert done["success"] is True
        assert logs[0]["log"].startswith("Already decided")
    finally:
        first.close()
        second.close()
    review = live_app.kit.reviews.get(held.instance_id)
    assert (review["status"], review["final_reply"], review["edited"]) == ("approved", "We are on it.", True)
    turn = wait_for(lambda: (t := live_app.kit.turn(held.instance_id)) and t.finished and t)
    assert turn.reply == "We are on it."


def test_one_visitors_wrong_passwords_do_not_lock_out_a_reviewer_behind_the_same_proxy(
    live_app_behind_proxy: LiveApp,
) -> None:
    """On a Space every request arrives from the proxy; the visitor's address is in X-Forwarded-For."""
    app = live_app_behind_proxy
    attacker = GradioSession(app.url, headers={"X-Forwarded-For": "203.0.113.9"})
    reviewer = GradioSession(app.url, headers={"X-Forwarded-For": "198.51.100.20"})
    try:
        messages = []
        for i in range(12):
            _done, logs = attacker.call("review_login", ["", f"guess {i}"])
            messages.append(logs[0]["log"])
        assert messages[0] == "Wrong reviewer name or password."
        assert messages[-1].startswith("Too many failed sign-ins")
        done, logs = attacker.call("review_login", ["", app.reviewer_password])
        assert done["output"]["data"][0] is None and logs[0]["log"].startswith("Too many failed sign-ins")

        done, _ = reviewer.call("review_login", ["", app.reviewer_password])
        assert done["success"] is True and done["output"]["data"][0]  # a token: signed in
    finally:
        attacker.close()
        reviewer.close()


def test_rest_and_the_review_tab_share_one_throttle(live_app_behind_proxy: LiveApp) -> None:
    app = live_app_behind_proxy
    forwarded = {"X-Forwarded-For": "203.0.113.50"}
    codes = [
        httpx.get(f"{app.url}/reviews", auth=("reviewer", "guess"), headers=forwarded).status_code
        for _ in range(12)
    ]
    assert codes[-1] == 429
    session = GradioSession(app.url, headers=forwarded)
    try:
        done, logs = session.call("review_login", ["", app.reviewer_password])
    finally:
        session.close()
    assert done["output"]["data"][0] is None
    assert logs[0]["log"].startswith("Too many failed sign-ins")


def test_app_py_serves_the_ui_and_the_rest_api(app_process: str) -> None:
    """What Spaces runs: one process, one port, the UI's queue working and the REST API beside it."""
    session = GradioSession(app_process)
    try:
        done, _ = session.call("chat", ["dora", "Hello from app.py"], timeout=15)
    except AssertionError:
        pytest.fail(
            "app.py accepted the call but Gradio's queue never ran it: the app's lifespan must keep the one "
            "gr.mount_gradio_app installed (it starts the queue)"
        )
    finally:
        session.close()
    reply = done["output"]["data"][0]["reply"]
    assert "Hello from app.py" in reply
    stored = httpx.get(f"{app_process}/conversations/dora", timeout=10).json()
    assert stored[0]["reply"] == reply
