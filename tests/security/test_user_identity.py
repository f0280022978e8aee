"""A user's history goes only to that user, to reviewers and to the admin.

REST: `POST /users` gives a new user id (`...@daca`) and its signed token; chatting as that id and reading
its history need the token (`Authorization: Bearer TOKEN`), so nobody can write in its name or read it.
Ids the caller picks (the tutorial's `bob`) stay open for chat, but their history needs a reviewer, the
admin, or a token the admin made for that id; from this machine without DACA_ADMIN_TOKEN the tutorial's
curl calls keep working, under the admin rule. Anonymous callers can only get new ids, never a token for
an id someone already uses."""

from __future__ import annotations

import base64

from tests.security.conftest import ADMIN_TOKEN, REVIEWER_PASSWORD

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
REVIEWER = {"Authorization": "Basic " + base64.b64encode(f"reviewer:{REVIEWER_PASSWORD}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_user(client) -> tuple[str, str]:
    response = client.post("/users")
    assert response.status_code == 201, response.text
    body = response.json()
    return body["user_id"], body["token"]


def test_a_new_user_chats_and_reads_only_with_its_token(make_app) -> None:
    kit, client = make_app()
    alice, alice_token = new_user(client)
    mallory, mallory_token = new_user(client)
    assert alice != mallory and alice.endswith("@daca") and mallory.endswith("@daca")

    sent = client.post(
        "/chat/", json={"user_id": alice, "text": "my secret plan"}, headers=bearer(alice_token)
    )
    assert sent.status_code == 200, sent.text
    mine = client.get(f"/conversations/{alice}", headers=bearer(alice_token))
    assert mine.status_code == 200 and mine.json()[0]["message"] == "my secret plan"

    # REST refuses a foreign id: no token, another user's token, a forged token.
    for headers, status in (({}, 401), (bearer(mallory_token), 403), (bearer(alice_token + "x"), 401)):
        read = client.get(f"/conversations/{alice}", headers=headers)
        assert read.status_code == status, (headers, read.text)
        assert "secret plan" not in read.text
        write = client.post("/chat/", json={"user_id": alice, "text": "in her name"}, headers=headers)
        assert write.status_code == status, (headers, write.text)
    assert [t["message"] for t in kit.conversations(alice)] == ["my secret plan"]

    # Reviewers and the admin read anyone's history.
    assert client.get(f"/conversations/{alice}", headers=REVIEWER).json()[0]["message"] == "my secret plan"
    assert client.get(f"/conversations/{alice}", headers=ADMIN).json()[0]["message"] == "my secret plan"


def test_open_ids_chat_as_before_but_their_history_is_not_public(make_app) -> None:
    _kit, client = make_app()
    assert client.post("/chat/", json={"user_id": "bob", "text": "hello"}).status_code == 200
    assert client.get("/conversations/bob").status_code == 401
    _mallory, token = new_user(client)
    assert client.get("/conversations/bob", headers=bearer(token)).status_code == 403
    assert client.get("/conversations/bob", headers=REVIEWER).status_code == 200


def test_only_the_admin_makes_a_token_for_a_chosen_id(make_app) -> None:
    _kit, client = make_app()
    client.post("/chat/", json={"user_id": "bob", "text": "hello"})
    assert client.post("/users/bob/token").status_code == 401
    assert client.post("/users/bob/token", headers=REVIEWER).status_code == 401
    assert client.post("/users", json={"user_id": "bob"}).json()["user_id"] != "bob"  # never a chosen id
    made = client.post("/users/bob/token", headers=ADMIN)
    assert made.status_code == 201 and made.json()["user_id"] == "bob"
    read = client.get("/conversations/bob", headers=bearer(made.json()["token"]))
    assert read.status_code == 200 and read.json()[0]["message"] == "hello"


def test_the_tutorials_curl_calls_work_from_this_machine_without_a_token(make_app) -> None:
    _kit, local = make_app(client_host="127.0.0.1", admin_token=None)
    assert local.post("/chat/", json={"user_id": "bob", "text": "hello"}).status_code == 200
    assert local.get("/conversations/bob").json()[0]["message"] == "hello"
    proxied = local.get("/conversations/bob", headers={"X-Forwarded-For": "203.0.113.9"})
    assert proxied.status_code == 401
