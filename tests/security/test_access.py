"""Review and admin endpoints refuse anonymous and wrongly authenticated calls, and a refused call
changes nothing. Without DACA_ADMIN_TOKEN, admin calls are allowed only from loopback, never through a
proxy (X-Forwarded-For) or from another host."""

from __future__ import annotations

import base64

import pytest

from tests.security.conftest import ADMIN_TOKEN, REVIEWER_PASSWORD

REVIEWER = ("reviewer", REVIEWER_PASSWORD)


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


BAD_REVIEWER_HEADERS = [
    {},
    basic("reviewer", "wrong"),
    basic("admin", REVIEWER_PASSWORD),
    basic("reviewer", REVIEWER_PASSWORD + " "),
    basic("reviewer", ""),
    {"Authorization": f"Bearer {ADMIN_TOKEN}"},  # the admin token is not a reviewer login
    {"Authorization": "Basic not-base64!"},
]
BAD_ADMIN_HEADERS = [
    {},
    {"Authorization": "Bearer wrong"},
    {"Authorization": f"Bearer {ADMIN_TOKEN}x"},
    {"Authorization": f"Token {ADMIN_TOKEN}"},
    {"Authorization": ADMIN_TOKEN},
    basic("reviewer", REVIEWER_PASSWORD),  # the reviewer is not an admin
    {"X-Forwarded-For": "127.0.0.1"},
]


@pytest.mark.parametrize("headers", BAD_REVIEWER_HEADERS, ids=range(len(BAD_REVIEWER_HEADERS)))
def test_review_endpoints_refuse_anyone_but_the_reviewer(make_app, headers: dict[str, str]) -> None:
    kit, client = make_app()
    held = client.post("/chat/?wait=0", json={"user_id": "bob", "text": "urgent please"}).json()[
        "instance_id"
    ]

    for method, path, body in (
        ("GET", "/reviews", None),
        ("GET", "/reviews?status=decided", None),
        ("POST", f"/reviews/{held}", {"approved": True, "reply": "hijacked"}),
        ("POST", "/reviews/no-such-id", {"approved": False}),
    ):
        response = client.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["www-authenticate"].startswith("Basic")
        assert "hijacked" not in response.text and "urgent" not in response.text

    assert kit.reviews.get(held)["status"] == "pending"  # nothing changed
    assert client.get("/reviews", auth=REVIEWER).json()[0]["instance_id"] == held


@pytest.mark.parametrize("headers", BAD_ADMIN_HEADERS, ids=range(len(BAD_ADMIN_HEADERS)))
def test_admin_endpoints_refuse_anyone_without_the_token(make_app, headers: dict[str, str]) -> None:
    kit, client = make_app(client_host="127.0.0.1")  # even from loopback, once a token is set
    kit.initialize_count("alice", 5)

    for path, body in (("/analytics/reset", None), ("/analytics/alice/initialize", {"message_count": 99})):
        response = client.post(path, json=body, headers=headers)
        assert response.status_code == 401, (path, response.text)
        assert response.headers["www-authenticate"] == "Bearer"

    assert kit.message_count("alice") == 5  # nothing changed
    ok = client.post(
        "/analytics/alice/initialize",
        json={"message_count": 7},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert ok.status_code == 200 and kit.message_count("alice") == 7


@pytest.mark.parametrize(
    ("host", "headers", "allowed"),
    [
        ("127.0.0.1", {}, True),
        ("::1", {}, True),
        ("127.0.0.1", {"X-Forwarded-For": "203.0.113.9"}, False),
        ("127.0.0.1", {"X-Forwarded-For": "127.0.0.1"}, False),  # any proxy hop: not this machine
        ("203.0.113.9", {}, False),
        ("10.0.0.2", {}, False),
        ("testclient", {}, False),  # not an address at all
    ],
)
def test_without_a_token_admin_calls_come_only_from_loopback(
    make_app, host: str, headers: dict[str, str], allowed: bool
) -> None:
    kit, client = make_app(client_host=host, admin_token=None)
    kit.initialize_count("alice", 5)
    response = client.post("/analytics/alice/initialize", json={"message_count": 1}, headers=headers)
    reset = client.post("/analytics/reset", headers=headers)
    if allowed:
        assert (response.status_code, reset.status_code) == (200, 200)
        assert kit.message_count("alice") == 0
    else:
        assert (response.status_code, reset.status_code) == (403, 403)
        assert "DACA_ADMIN_TOKEN" in reset.json()["detail"]
        assert kit.message_count("alice") == 5


def test_reviewer_and_admin_logins_work(make_app) -> None:
    _kit, client = make_app()
    held = client.post("/chat/?wait=0", json={"user_id": "bob", "text": "help me"}).json()["instance_id"]
    assert client.post(f"/reviews/{held}", json={"approved": False}, auth=REVIEWER).status_code == 200
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert client.post("/analytics/reset", headers=admin).json()["status"] == "success"
