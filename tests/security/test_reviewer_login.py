"""The reviewer login over REST: wrong passwords are throttled per account and client (429 with
Retry-After), one client's failures never lock out another, proxy headers count only from a trusted
proxy, and named reviewers (DACA_REVIEWERS) each decide under their own name."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.security.conftest import REVIEWER_PASSWORD

REVIEWER = ("reviewer", REVIEWER_PASSWORD)
ALICE_PW, BOB_PW = "alice-long-password-1", "bob-long-password-22"


def another_client(client: TestClient, host: str) -> TestClient:
    """A second caller of the same app, from another address."""
    return TestClient(client.app, client=(host, 50001))


def hold(client: TestClient, user: str = "bob") -> str:
    response = client.post("/chat/?wait=0", json={"user_id": user, "text": "urgent please"})
    return str(response.json()["instance_id"])


def test_wrong_passwords_are_throttled_and_another_client_still_gets_in(make_app: Any) -> None:
    _kit, attacker = make_app(client_host="203.0.113.9")
    codes = [attacker.get("/reviews", auth=("reviewer", f"guess-{i}")).status_code for i in range(60)]

    assert 401 in codes and 429 in codes
    first_429 = codes.index(429)
    assert 3 <= first_429 <= 20, codes  # a few tries, then refused without checking
    assert set(codes[first_429:]) == {429}
    refused = attacker.get("/reviews", auth=REVIEWER)
    assert refused.status_code == 429  # even the right password: this client must wait
    assert 1 <= int(refused.headers["retry-after"]) <= 900
    assert "Too many failed sign-ins" in refused.json()["detail"]

    # The reviewer, from another address, is not locked out by the attacker's failures.
    reviewer = another_client(attacker, "198.51.100.20")
    assert reviewer.get("/reviews", auth=REVIEWER).status_code == 200


def test_proxy_headers_are_ignored_unless_the_proxy_is_trusted(make_app: Any) -> None:
    # Not trusted (the default off a Space): a forged X-Forwarded-For does not buy fresh attempts.
    _kit, client = make_app(client_host="203.0.113.9")
    codes = [
        client.get(
            "/reviews", auth=("reviewer", "guess"), headers={"X-Forwarded-For": f"10.0.0.{i}"}
        ).status_code
        for i in range(40)
    ]
    assert codes[-1] == 429


def test_behind_a_trusted_proxy_each_visitor_is_throttled_on_their_own(make_app: Any) -> None:
    # On a Space every request comes from the proxy's address; the proxy appends the visitor's.
    _kit, proxy = make_app(client_host="10.1.2.3", space_id="someone/daca")
    attacker = {"X-Forwarded-For": "1.1.1.1, 203.0.113.9"}  # the first address is the attacker's own forgery
    codes = [
        proxy.get("/reviews", auth=("reviewer", "guess"), headers=attacker).status_code for _ in range(30)
    ]
    assert codes[-1] == 429

    reviewer = {"X-Forwarded-For": "198.51.100.20"}
    assert proxy.get("/reviews", auth=REVIEWER, headers=reviewer).status_code == 200
    # Changing the forged part does not give the attacker fresh attempts.
    again = {"X-Forwarded-For": "7.7.7.7, 203.0.113.9"}
    assert proxy.get("/reviews", auth=REVIEWER, headers=again).status_code == 429


def test_the_proxy_trust_setting_overrides_the_space_default(make_app: Any) -> None:
    _kit, proxy = make_app(client_host="10.1.2.3", trusted_proxies=1)
    for _ in range(30):
        proxy.get("/reviews", auth=("reviewer", "guess"), headers={"X-Forwarded-For": "203.0.113.9"})
    assert (
        proxy.get("/reviews", auth=REVIEWER, headers={"X-Forwarded-For": "198.51.100.20"}).status_code == 200
    )

    _kit, direct = make_app(client_host="10.1.2.3", space_id="someone/daca", trusted_proxies=0)
    for _ in range(30):
        direct.get("/reviews", auth=("reviewer", "guess"), headers={"X-Forwarded-For": "203.0.113.9"})
    assert (
        direct.get("/reviews", auth=REVIEWER, headers={"X-Forwarded-For": "198.51.100.20"}).status_code == 429
    )


def test_failures_for_one_account_do_not_lock_another_account(make_app: Any) -> None:
    from daca_kit.web.passwords import hash_password

    reviewers = f"alice:{hash_password(ALICE_PW)},bob:{hash_password(BOB_PW)}"
    _kit, client = make_app(reviewers=reviewers)
    for _ in range(12):
        client.get("/reviews", auth=("alice", "guess"))
    assert client.get("/reviews", auth=("alice", ALICE_PW)).status_code == 429
    assert client.get("/reviews", auth=("bob", BOB_PW)).status_code == 200


@pytest.fixture
def named(make_app: Any) -> tuple[Any, TestClient]:
    from daca_kit.web.passwords import hash_password

    reviewers = f"alice:{hash_password(ALICE_PW)}, bob:{hash_password(BOB_PW)}"
    return make_app(reviewers=reviewers)  # type: ignore[no-any-return]


def test_two_named_reviewers_each_decision_attributed_to_its_reviewer(named: tuple[Any, TestClient]) -> None:
    kit, client = named
    first, second, third = hold(client, "u1"), hold(client, "u2"), hold(client, "u3")

    assert (
        client.post(f"/reviews/{first}", json={"approved": True}, auth=("alice", ALICE_PW)).status_code == 200
    )
    decided = client.post(
        f"/reviews/{second}", json={"approved": False, "reason": "spam"}, auth=("bob", BOB_PW)
    )
    assert decided.status_code == 200
    assert decided.json()["decided_by"] == "bob"
    # DACA_REVIEWER_PASSWORD keeps working beside them, as the account `reviewer`.
    assert client.post(f"/reviews/{third}", json={"approved": True}, auth=REVIEWER).status_code == 200

    audit = {
        r["instance_id"]: r["decided_by"] for r in client.get("/reviews?status=decided", auth=REVIEWER).json()
    }
    assert audit == {first: "alice", second: "bob", third: "reviewer"}
    assert kit.reviews.get(first)["decided_by"] == "alice"


@pytest.mark.parametrize(
    "login",
    [
        ("carol", ALICE_PW),
        ("alice", BOB_PW),
        ("bob", ALICE_PW),
        ("alice", ""),
        ("", ALICE_PW),
        ("alice", ALICE_PW + " "),
    ],
)
def test_a_name_not_on_the_list_or_a_wrong_pairing_is_refused(
    named: tuple[Any, TestClient], login: tuple[str, str]
) -> None:
    kit, client = named
    held = hold(client)
    response = client.post(f"/reviews/{held}", json={"approved": True}, auth=login)
    assert response.status_code == 401
    assert kit.reviews.get(held)["status"] == "pending"


def test_a_hugging_face_name_has_no_password_over_rest(make_app: Any) -> None:
    # Names without a hash sign in with Hugging Face in the Review tab; over REST no password opens them.
    _kit, client = make_app(reviewers="hf-alice", host="127.0.0.1")
    for password in ("", "hf-alice", REVIEWER_PASSWORD):
        assert client.get("/reviews", auth=("hf-alice", password)).status_code == 401
