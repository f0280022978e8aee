"""The Gemini stub failing with 429, 500 and timeouts: the kit retries, then ends the turn with a clear
error status (POST /chat/ 503 with a sentence, GET /chat/{id} failed); an empty reply is never stored."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from daca_kit.bootstrap import bootstrap
from daca_kit.core.kit import Kit
from daca_kit.web.api import create_api
from tests.support.gemini_stub import GeminiStub

KEY = "AIzaSy-fault-test-key-42"
MODEL = "gemini-test-flash"


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDK's HTTP client honours proxy variables; loopback traffic must not go through one.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def stub() -> Iterator[GeminiStub]:
    with GeminiStub(api_key=KEY, models={MODEL}, hold_seconds=3.0) as running:
        yield running


@pytest.fixture
def kit(settings_factory: Any, stub: GeminiStub) -> Iterator[Kit]:
    settings = settings_factory(
        gemini_api_key=KEY, gemini_model=MODEL, gemini_base_url=stub.base_url, gemini_timeout=3.0
    )
    with bootstrap(settings) as running:
        yield running


@pytest.fixture
def client(kit: Kit) -> TestClient:
    return TestClient(create_api(kit))


def stored_replies(tmp_path: Path) -> list[tuple[str, str]]:
    import sqlite3

    with sqlite3.connect(tmp_path / "daca.db") as db:
        return db.execute("SELECT instance_id, reply FROM conversation").fetchall()


def generate_calls(stub: GeminiStub) -> int:
    return sum(1 for r in stub.requests if r.path.endswith(":generateContent"))


def test_retries_through_429_and_500_then_answers(
    client: TestClient, stub: GeminiStub, tmp_path: Path
) -> None:
    stub.plan(429, 500)
    response = client.post("/chat/", json={"user_id": "ann", "text": "What is Dapr?"})
    assert response.status_code == 200, response.text
    assert response.json()["reply"] == "stub reply to: What is Dapr?"
    assert generate_calls(stub) == 3
    assert [r[1] for r in stored_replies(tmp_path)] == ["stub reply to: What is Dapr?"]


@pytest.mark.parametrize(
    ("steps", "words"),
    [
        ((429, 429, 429), "rate limiting"),
        ((500, 503, "timeout"), "did not answer"),
        ((500, 500, 500), "Gemini failed with 500"),
        (("empty",), "empty reply"),
    ],
    ids=["429", "5xx-then-timeout", "500", "empty"],
)
def test_persistent_failure_gives_a_clear_error_and_stores_nothing(
    client: TestClient, stub: GeminiStub, tmp_path: Path, steps: tuple[Any, ...], words: str
) -> None:
    stub.plan(*steps)
    response = client.post("/chat/", json={"user_id": "ann", "text": "Tell me about Dapr"})

    assert response.status_code == 503, response.text
    body = response.json()
    assert body["status"] == "failed"
    assert words.lower() in body["detail"].lower()
    assert body["detail"][0].isupper() and "Traceback" not in body["detail"]  # a sentence, not a trace
    assert KEY not in response.text
    assert generate_calls(stub) == (3 if len(steps) == 3 else 1)

    turn = client.get(f"/chat/{body['instance_id']}")
    assert turn.status_code == 200
    assert turn.json()["status"] == "failed"
    assert turn.json()["reply"] is None
    assert turn.json()["error"] == body["detail"]
    assert stored_replies(tmp_path) == []  # no row, so never an empty stored reply
    assert client.get("/analytics/ann").json()["message_count"] == 0  # no MessageSent either
