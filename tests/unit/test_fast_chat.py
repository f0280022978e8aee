"""POST /chat/'s plain ASGI route answers exactly as FastAPI's documented route would: the same request
sent to the app with and without it gets the same status and body, for well-formed turns and for every
kind of bad input it passes on."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from daca_kit.web.api import create_api
from daca_kit.web.api.chat import _FastChatRoute
from daca_kit.web.api.deps import get_kit
from tests.support.fakes import FakeReplyModel

ID = re.compile(r"[0-9a-f]{32}|\d{4}-\d\d-\d\dT[0-9:.]+Z")  # generated ids and times

CASES = [
    ("well formed", "", {"json": {"user_id": "ann", "text": "Hello there"}}),
    (
        "with metadata and tags",
        "",
        {"json": {"user_id": "ann", "text": "Hi", "metadata": {"a": 1}, "tags": ["x"]}},
    ),
    ("held for review, no wait", "?wait=0", {"json": {"user_id": "ann", "text": "an urgent matter"}}),
    ("a short wait", "?wait=0.05", {"json": {"user_id": "ann", "text": "an urgent matter"}}),
    ("wait too long", "?wait=601", {"json": {"user_id": "ann", "text": "Hi"}}),
    ("wait negative", "?wait=-1", {"json": {"user_id": "ann", "text": "Hi"}}),
    ("wait not a number", "?wait=soon", {"json": {"user_id": "ann", "text": "Hi"}}),
    ("wait in other spelling", "?wait=1e1", {"json": {"user_id": "ann", "text": "Hi"}}),
    ("an unknown parameter", "?verbose=1", {"json": {"user_id": "ann", "text": "Hi"}}),
    (
        "invalid JSON",
        "",
        {"content": b'{"user_id": "ann", ', "headers": {"content-type": "application/json"}},
    ),
    ("not an object", "", {"json": ["ann", "Hi"]}),
    ("missing text", "", {"json": {"user_id": "ann"}}),
    ("text not a string", "", {"json": {"user_id": "ann", "text": 5}}),
    ("too many tags", "", {"json": {"user_id": "ann", "text": "Hi", "tags": ["t"] * 51}}),
    ("empty text", "", {"json": {"user_id": "ann", "text": "   "}}),
    ("bad user id", "", {"json": {"user_id": "no spaces allowed", "text": "Hi"}}),
    ("a bound id without its token", "", {"json": {"user_id": "ann@daca", "text": "Hi"}}),
    ("form data", "", {"data": {"user_id": "ann", "text": "Hi"}}),
    ("no content type", "", {"content": b'{"user_id": "ann", "text": "Hi"}'}),
    ("empty body", "", {"content": b"", "headers": {"content-type": "application/json"}}),
]


def _without_fast_route(app):
    app.router.routes[:] = [r for r in app.router.routes if not isinstance(r, _FastChatRoute)]
    return app


def _same(body):
    """The body with generated ids made comparable."""
    return ID.sub("<id>", str(body))


@pytest.mark.parametrize(("case", "query", "request_args"), CASES, ids=[c[0] for c in CASES])
def test_the_fast_route_answers_as_the_documented_one(make_kit, case, query, request_args) -> None:
    answers = []
    for fast in (True, False):
        kit = make_kit(keywords="urgent", llm=FakeReplyModel())
        app = create_api(kit)
        if not fast:
            _without_fast_route(app)
        assert any(isinstance(r, _FastChatRoute) for r in app.router.routes) is fast
        with TestClient(app) as http:
            answer = http.post(f"/chat/{query}", **request_args)
            answers.append((answer.status_code, _same(answer.json()), answer.headers.get("content-type")))
    assert answers[0] == answers[1]


def test_a_well_formed_turn_skips_fastapis_dependencies_and_bad_input_still_reaches_them(make_kit) -> None:
    app = create_api(make_kit())

    def refused():
        raise RuntimeError("the documented route was used")

    app.dependency_overrides[get_kit] = refused
    with TestClient(app, raise_server_exceptions=False) as http:
        assert http.post("/chat/", json={"user_id": "ann", "text": "Hi"}).status_code == 200
        assert http.post("/chat/?wait=2", json={"user_id": "ann", "text": "Hi"}).status_code == 200
        # Passed on: FastAPI solves the dependencies (the override fails) before it validates the body.
        assert http.post("/chat/?verbose=1", json={"user_id": "ann", "text": "Hi"}).status_code == 500


def test_the_documented_route_is_what_openapi_shows(make_kit) -> None:
    with TestClient(create_api(make_kit())) as http:
        post = http.get("/openapi.json").json()["paths"]["/chat/"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ChatRequest"
    }
    assert {"200", "202", "422", "429", "503"} <= set(post["responses"])


def test_a_rate_limited_turn_gets_the_same_answer_and_retry_after(make_kit) -> None:
    answers = []
    for fast in (True, False):
        app = create_api(make_kit(rate_limit="1/minute", llm=FakeReplyModel()))
        if not fast:
            _without_fast_route(app)
        with TestClient(app) as http:
            assert http.post("/chat/", json={"user_id": "ann", "text": "Hi"}).status_code == 200
            limited = http.post("/chat/", json={"user_id": "ann", "text": "Hi again"})
            seconds = int(limited.headers["retry-after"])
            answers.append(
                (limited.status_code, re.sub(r"\d+ s\.", "<n> s.", limited.json()["detail"]), seconds)
            )
    assert answers[0][:2] == answers[1][:2] and answers[0][0] == 429
    assert 0 < answers[0][2] <= 60 and abs(answers[0][2] - answers[1][2]) <= 1  # a second may pass between
