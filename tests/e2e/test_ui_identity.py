"""The Chat tab binds its user id to the browser: a signed identity the server issues and the browser keeps.
A second browser gets its own id and cannot load the first one's history, not even by calling the tab's
functions over raw HTTP with the first browser's user id (what an attacker without the page would do)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import GradioSession, LiveApp

SECRET = "my account number is 12345"


def load(session: GradioSession, browser: Any) -> tuple[str, str, Any]:
    """chat_load as a browser holding `browser` in its storage: (user id shown, chat text, browser state)."""
    done, _ = session.call("chat_load", [browser, None])
    assert done["success"], done
    data = done["output"]["data"]
    return data[0], str(data[1]), data[5]


def send(session: GradioSession, user_box: str, text: str, browser: Any) -> dict[str, Any]:
    done, _ = session.call("chat_send", [user_box, text, None, browser])
    return done


@pytest.fixture
def sessions(live_app: LiveApp):
    opened: list[GradioSession] = []

    def make() -> GradioSession:
        opened.append(GradioSession(live_app.url))
        return opened[-1]

    yield make
    for s in opened:
        s.close()


def test_a_second_browser_cannot_load_the_first_ones_history(live_app: LiveApp, sessions) -> None:
    first = sessions()
    alice, _, alice_browser = load(first, {"user_id": None, "pending": []})
    assert alice.endswith("@daca")
    send(first, alice, SECRET, alice_browser)
    assert live_app.kit.conversations(alice)[0]["message"] == SECRET
    again, chat, _ = load(sessions(), alice_browser)  # the same browser (its storage), reloaded
    assert again == alice and SECRET in chat

    second = sessions()
    bob, chat, _ = load(second, {"user_id": None, "pending": []})
    assert bob != alice and SECRET not in chat

    # The first browser's id without its token, or with a forged one, opens a new identity instead.
    for stolen in (
        {"user_id": alice, "pending": []},
        {"user_id": alice, "token": "forged", "pending": []},
        {"user_id": alice, "token": alice_browser["token"] + "x", "pending": []},
    ):
        who, chat, _ = load(sessions(), stolen)
        assert who != alice and SECRET not in chat

    # Nor can a message be sent in the first browser's name.
    send(second, alice, "written by someone else", {"user_id": alice, "pending": []})
    assert [t["message"] for t in live_app.kit.conversations(alice)] == [SECRET]


def test_the_chat_api_refuses_a_bound_id_without_its_token(live_app: LiveApp, sessions) -> None:
    alice, _, _ = load(sessions(), {"user_id": None, "pending": []})
    done, _ = sessions().call("chat", [alice, "in her name"])
    assert not done["success"]
    assert live_app.kit.conversations(alice) == []


def test_the_chat_api_takes_the_token_in_the_authorization_header(live_app: LiveApp) -> None:
    import httpx

    user = httpx.post(f"{live_app.url}/users").json()
    session = GradioSession(live_app.url, headers={"Authorization": f"Bearer {user['token']}"})
    try:
        done, _ = session.call("chat", [user["user_id"], "with my token"])
    finally:
        session.close()
    assert done["success"] and done["output"]["data"][0]["status"] == "completed"
    assert live_app.kit.conversations(user["user_id"])[0]["message"] == "with my token"
