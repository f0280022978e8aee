"""Hostile input gets a 4xx or is stored verbatim, and returned as JSON (inert); nothing else changes.
Run on the embedded SQLite store and on real Postgres."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from daca_kit.core.kit import Kit

VERBATIM = {
    "sql": "Robert'); DROP TABLE conversation; --",
    "sql-union": "' UNION SELECT reply FROM conversation WHERE '1'='1",
    "html": '<script>alert("x")</script><img src=x onerror=alert(1)>',
    "rtl": "\u202eevil.exe\u202c and \u200f\u05e9\u05dc\u05d5\u05dd\u200e",
    "emoji": "👩🏽‍💻🚀 ZWJ and flags 🇵🇰🇩🇪, combining e\u0301 and \ufeffBOM",
    "wide": "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 " * 100,
    "format": "%s %d {0} {user_id} ${HOME} `id`",
    "newlines": 'line1\r\nline2\n\n\ttab \\ backslash "quote"',
    "max": "x" * 4000,
}

REFUSED: list[tuple[str, Any, int]] = [
    ("sql user_id", {"user_id": "a' OR '1'='1", "text": "hi"}, 422),
    ("path user_id", {"user_id": "../../etc/passwd", "text": "hi"}, 422),
    ("long user_id", {"user_id": "u" * 65, "text": "hi"}, 422),
    ("empty text", {"user_id": "u", "text": "   "}, 422),
    ("over 4000", {"user_id": "u", "text": "x" * 4001}, 422),
    ("text not a string", {"user_id": "u", "text": {"$ne": ""}}, 422),
    ("user_id a number", {"user_id": 1, "text": "hi"}, 422),
    ("array body", [{"user_id": "u", "text": "hi"}], 422),
    ("tags not a list", {"user_id": "u", "text": "hi", "tags": "x"}, 422),
    ("too many tags", {"user_id": "u", "text": "hi", "tags": ["t"] * 51}, 422),
]


BOTH_DATABASES = pytest.mark.parametrize(
    "app", ["sqlite", pytest.param("postgres", marks=pytest.mark.integration)], indirect=True
)


@pytest.fixture
def app(request: pytest.FixtureRequest, make_app: Any) -> Iterator[tuple[Kit, TestClient]]:
    """The app on SQLite, or on a fresh Postgres database where a test asks for BOTH_DATABASES."""
    if getattr(request, "param", "sqlite") == "postgres":
        yield make_app(database_url=request.getfixturevalue("pg_url"))
    else:
        yield make_app()


def snapshot(kit: Kit) -> dict[str, Any]:
    """Everything a request could change (once the outbox relay has caught up)."""
    assert kit.relay is not None and kit.relay.wait_idle(10)
    return {
        "conversations": {u: kit.conversations(u, 500) for u in ("u", "eve", "x")},
        "reviews": kit.reviews.pending(),
        "counts": kit.all_counts(),
        "outbox": kit.stores.outbox.size(),
    }


@BOTH_DATABASES
def test_hostile_text_is_stored_verbatim_and_returned_as_json(app: tuple[Kit, TestClient]) -> None:
    kit, client = app
    for name, text in VERBATIM.items():
        response = client.post("/chat/", json={"user_id": "eve", "text": text})
        assert response.status_code == 200, (name, response.text)
        assert response.headers["content-type"] == "application/json"
        assert response.json()["metadata"]["status"] == "completed"

    admin = {"Authorization": "Bearer adm-4f8a2b6c0d1e"}  # a user's history is not public
    stored = client.get("/conversations/eve", params={"limit": 100}, headers=admin)
    assert stored.headers["content-type"] == "application/json"
    assert [t["message"] for t in reversed(stored.json())] == list(VERBATIM.values())
    # HTML leaves only inside JSON strings (application/json), never as markup of an HTML response.
    assert "<script>" in stored.text and stored.json()[-3]["message"] == VERBATIM["html"]
    assert kit.stores.database.ping() is None  # the table survived the "DROP TABLE" text


UNSTORABLE = {"nul": "before\x00after", "only-nul": "\x00", "lone-surrogate": "lone \ud800 surrogate"}


@BOTH_DATABASES
@pytest.mark.parametrize("case", list(UNSTORABLE))
def test_nul_and_lone_surrogates_get_a_4xx_or_are_stored_verbatim(
    app: tuple[Kit, TestClient], case: str
) -> None:
    kit, client = app
    text = UNSTORABLE[case]
    body = json.dumps({"user_id": "x", "text": text}).encode()  # valid JSON (\u0000, \ud800 escapes)
    response = client.post("/chat/", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code < 500, response.text
    if response.status_code == 200:
        assert kit.conversations("x", 1)[0]["message"] == text
    else:
        assert response.status_code == 422


ODD_PATHS = [
    "/chat/%00",
    "/chat/..%2F..%2Fetc",
    "/chat/" + "a" * 300,
    "/conversations/%27%20OR%201=1",
    "/analytics/%3Cscript%3E",
]


@BOTH_DATABASES
@pytest.mark.parametrize("path", ODD_PATHS)
def test_odd_ids_in_paths_get_a_4xx(app: tuple[Kit, TestClient], path: str) -> None:
    _kit, client = app
    assert 400 <= client.get(path).status_code < 500


@pytest.mark.parametrize(("name", "body", "status"), REFUSED, ids=[r[0] for r in REFUSED])
def test_invalid_bodies_are_refused_and_change_nothing(
    app: tuple[Kit, TestClient], name: str, body: Any, status: int
) -> None:
    kit, client = app
    client.post("/chat/", json={"user_id": "u", "text": "a first, valid turn"})
    before = snapshot(kit)
    response = client.post("/chat/", json=body)
    assert response.status_code == status, response.text
    assert isinstance(response.json()["detail"], str)  # a sentence, not pydantic's error list
    assert snapshot(kit) == before


def test_malformed_and_oversized_requests_are_refused_and_change_nothing(app: tuple[Kit, TestClient]) -> None:
    kit, client = app
    client.post("/chat/", json={"user_id": "u", "text": "a first, valid turn"})
    before = snapshot(kit)
    megabyte = json.dumps({"user_id": "u", "text": "x" * 1_000_000}).encode()
    headers = {"Content-Type": "application/json"}

    assert client.post("/chat/", content=megabyte, headers=headers).status_code == 413
    chunked = client.post("/chat/", content=iter([megabyte[:500_000], megabyte[500_000:]]), headers=headers)
    assert chunked.status_code == 413  # no Content-Length: refused while streaming in
    big_meta = json.dumps({"user_id": "u", "text": "hi", "metadata": {"k": "v" * 1_000_000}}).encode()
    assert client.post("/chat/", content=big_meta, headers=headers).status_code == 413
    admin = {"Authorization": "Bearer adm-4f8a2b6c0d1e", **headers}
    assert client.post("/analytics/u/initialize", content=b"9" * 1_000_000, headers=admin).status_code == 413

    invalid = client.post("/chat/", content=b'{"user_id": "u", "text": ', headers=headers)
    assert invalid.status_code == 422
    assert invalid.json()["detail"] == "The request body is not valid JSON."
    assert client.post("/chat/", content=b"\xff\xfe\x00garbage", headers=headers).status_code == 422
    assert (
        client.post(
            "/chat/",
            content=b"user_id=u&text=hi",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ).status_code
        == 422
    )
    assert client.post("/chat/", content=b"", headers=headers).status_code == 422
    deep = b"[" * 100_000 + b"]" * 100_000  # 200 KB: refused by size before any parsing
    assert client.post("/chat/", content=deep, headers=headers).status_code == 413
    nested = b'{"user_id":"u","text":"hi","metadata":' + b'{"a":' * 500 + b"1" + b"}" * 500 + b"}"
    assert client.post("/chat/", content=nested, headers=headers).status_code < 500

    after = snapshot(kit)
    assert len(after["conversations"]["u"]) - len(before["conversations"]["u"]) <= 1  # the nested (valid) one
    assert after["reviews"] == before["reviews"]
    assert after["outbox"] == before["outbox"] == 0
