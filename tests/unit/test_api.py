"""The REST contract of DESIGN.md, through the ASGI app (fakes behind the kit)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from daca_kit.web.api import create_api

REVIEWER = ("reviewer", "test-reviewer-pw")
ADMIN = {"Authorization": "Bearer test-admin-token"}


@pytest.fixture
def client(make_kit):
    def make(**overrides):
        kit = make_kit(**overrides)
        return TestClient(create_api(kit)), kit

    return make


def test_tutorial_step5_flow(client) -> None:
    http, kit = client()
    assert http.post("/analytics/alice/initialize", json={"message_count": 5}, headers=ADMIN).json() == {
        "status": "success",
        "user_id": "alice",
        "message_count": 5,
    }
    http.post("/analytics/bob/initialize", json={"message_count": 3}, headers=ADMIN)
    body = {
        "user_id": "bob",
        "text": "This is an urgent request!",
        "metadata": {
            "timestamp": "2025-04-06T12:00:00Z",
            "session_id": "123e4567-e89b-12d3-a456-426614174001",
        },
        "tags": ["greeting"],
    }
    held = http.post("/chat/?wait=0", json=body)
    assert held.status_code == 202
    instance_id = held.json()["instance_id"]
    assert held.json() == {"user_id": "bob", "instance_id": instance_id, "status": "pending_review"}
    assert http.get(f"/chat/{instance_id}").json()["status"] == "pending_review"

    [review] = http.get("/reviews?status=pending", auth=REVIEWER).json()
    assert set(review) >= {"instance_id", "user_id", "message", "proposed_reply", "created_at"}
    decided = http.post(f"/reviews/{instance_id}", json={"approved": True}, auth=REVIEWER)
    assert decided.status_code == 200
    assert http.post(f"/reviews/{instance_id}", json={"approved": True}, auth=REVIEWER).status_code == 409

    kit.wait_turn_sync(instance_id, 5)
    turn = http.get(f"/chat/{instance_id}").json()
    assert turn["status"] == "completed" and turn["reply"] == review["proposed_reply"]
    kit.relay.wait_idle(5)
    assert http.get("/analytics/bob").json() == {"user_id": "bob", "message_count": 4}
    [row] = http.get("/conversations/bob", headers=ADMIN).json()  # the tutorial reads it as the admin
    assert row["message"] == "This is an urgent request!"


def test_plain_chat_returns_200_with_the_contract_shape(client) -> None:
    http, _ = client()
    response = http.post("/chat/", json={"user_id": "alice", "text": "hi", "metadata": {"session_id": "s-1"}})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"user_id", "reply", "metadata"}
    assert body["metadata"]["session_id"] == "s-1"
    assert body["metadata"]["status"] == "completed"
    assert set(body["metadata"]) == {"timestamp", "session_id", "instance_id", "status"}


def test_chat_waits_for_a_decision_made_meanwhile(client) -> None:
    import threading
    import time

    http, kit = client()

    def approve_soon() -> None:
        for _ in range(50):
            pending = kit.reviews.pending()
            if pending:
                kit.reviews.decide(pending[0]["instance_id"], approved=True, reply="approved by a human")
                return
            time.sleep(0.05)

    threading.Thread(target=approve_soon).start()
    response = http.post("/chat/?wait=5", json={"user_id": "bob", "text": "urgent please"})
    assert response.status_code == 200
    assert response.json()["reply"] == "approved by a human"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"user_id": "bob", "text": ""}, "text must not be empty"),
        ({"user_id": "bob", "text": "x" * 4001}, "limit is 4000"),
        ({"user_id": "no spaces", "text": "hi"}, "user_id must be"),
        ({"text": "hi"}, "user_id: Field required"),
        ({"user_id": "bob", "text": 5}, "text"),
    ],
)
def test_bad_input_gets_422_with_a_sentence(client, body, fragment) -> None:
    http, kit = client()
    response = http.post("/chat/", json=body)
    assert response.status_code == 422
    assert fragment in response.json()["detail"]
    assert kit.stores.conversations.conversations("bob") == []


def test_invalid_json_and_oversized_body(client) -> None:
    http, _ = client()
    bad = http.post("/chat/", content=b"{not json", headers={"content-type": "application/json"})
    assert bad.status_code == 422 and bad.json()["detail"] == "The request body is not valid JSON."
    huge = http.post("/chat/", content=b"x" * 1_000_000, headers={"content-type": "application/json"})
    assert huge.status_code == 413


def test_rate_limit_gives_429_with_retry_after(client) -> None:
    http, _ = client(rate_limit="1/minute")
    assert http.post("/chat/", json={"user_id": "amy", "text": "one"}).status_code == 200
    limited = http.post("/chat/", json={"user_id": "amy", "text": "two"})
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert "Too many messages" in limited.json()["detail"]


def test_reviews_need_the_reviewer_login(client) -> None:
    http, _ = client()
    assert http.get("/reviews").status_code == 401
    assert http.get("/reviews", auth=("reviewer", "wrong")).status_code == 401
    assert http.post("/reviews/x", json={"approved": True}).status_code == 401
    assert http.post("/reviews/unknown", json={"approved": True}, auth=REVIEWER).status_code == 404


def test_admin_calls_need_the_token(client) -> None:
    http, _ = client()
    assert http.post("/analytics/reset").status_code == 401
    assert http.post("/analytics/reset", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert http.post("/analytics/bob/initialize", json={"message_count": 1}).status_code == 401
    reset = http.post("/analytics/reset", headers=ADMIN)
    assert reset.status_code == 200 and reset.json()["status"] == "success"


def test_without_a_token_admin_calls_are_refused_off_this_machine(client) -> None:
    http, _ = client(admin_token=None)
    # TestClient's peer is not a loopback address.
    assert http.post("/analytics/reset").status_code == 403


def test_unknown_turn_is_404_and_health_and_usage_answer(client) -> None:
    http, _ = client()
    assert http.get("/chat/nope").status_code == 404
    health = http.get("/health").json()
    assert health["status"] == "healthy" and health["backends"]["database"]["ok"]
    usage = http.get("/usage").json()
    assert {row["service"] for row in usage["services"]} == {"model", "counters", "events", "database"}


def test_analytics_shows_unavailable_when_counters_are_down(client, fakes) -> None:
    http, _ = client()
    fakes["counters"].down = True
    response = http.get("/analytics/bob")
    assert response.status_code == 200
    assert response.json()["message_count"] is None and response.json()["available"] is False
    assert http.post("/chat/", json={"user_id": "bob", "text": "hi"}).status_code == 200


def test_health_shows_the_model_degraded_after_a_failed_reply(client, fakes) -> None:
    from daca_kit.errors import ModelError

    http, kit = client()
    fakes["llm"].fail_with = ModelError(
        "GEMINI_MODEL 'old' was not found: set GEMINI_MODEL to a current model"
    )
    assert http.post("/chat/", json={"user_id": "amy", "text": "hi"}).status_code == 503
    kit._health_cache = None
    health = http.get("/health").json()
    assert health["status"] == "degraded" and health["degraded"] == ["model"]
    assert "GEMINI_MODEL" in health["backends"]["model"]["error"]
    fakes["llm"].fail_with = None
    assert http.post("/chat/", json={"user_id": "amy", "text": "hi again"}).status_code == 200
    kit._health_cache = None
    assert http.get("/health").json()["status"] == "healthy"


def test_every_route_documents_its_response_schema(client) -> None:
    http, _kit = client()
    spec = http.get("/openapi.json").json()
    missing = []
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            done = operation["responses"].get("200") or operation["responses"].get("201") or {}
            content = done.get("content", {})
            ok = content.get("application/json") or content.get("text/event-stream") or {}
            if not ok.get("schema") or ok["schema"] == {}:
                missing.append(f"{method.upper()} {path}")
    assert missing == []
    chat = spec["paths"]["/chat/"]["post"]["responses"]
    assert {"200", "202", "422", "429", "503"} <= set(chat)
