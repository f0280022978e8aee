"""Secrets (Gemini key, database, Redis and RabbitMQ passwords, admin token, reviewer password) never
appear in logs, pages or API responses. Every log record at DEBUG (kit and libraries) is captured
during full turns, failures included, and searched; so is everything the real app process prints."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
import pytest
import redis

from daca_kit.bootstrap import bootstrap
from daca_kit.errors import DacaError
from tests.conftest import AMQP_USER_PASSWORD as AMQP_PASSWORD
from tests.conftest import purge_queues
from tests.security.conftest import ADMIN_TOKEN, REVIEWER_PASSWORD
from tests.support.appproc import AppProcess, eventually
from tests.support.gemini_stub import GeminiStub

pytestmark = pytest.mark.integration

GEMINI_KEY = "AIzaSy-SECRET-gemini-5e1f0a9c"
DB_PASSWORD = "dbpw-SECRET-71c0e2"
REDIS_PASSWORD = "rdpw-SECRET-3b9d44"
MODEL = "gemini-test-flash"


def with_password(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{quote(user)}:{quote(password)}@{host}"))


def assert_no_secret(text: str, secrets: dict[str, str], where: str) -> None:
    for name, value in secrets.items():
        assert value not in text, f"{name} appears in {where}"
        assert quote(value) not in text, f"{name} (URL-quoted) appears in {where}"


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def redis_user(redis_url: str) -> Iterator[str]:
    """A Redis URL with a user and password (a temporary ACL user, removed afterwards)."""
    name = f"daca-sec-{uuid.uuid4().hex[:8]}"
    admin = redis.Redis.from_url(redis_url)
    admin.acl_setuser(name, enabled=True, passwords=[f"+{REDIS_PASSWORD}"], keys=["*"], commands=["+@all"])
    try:
        yield with_password(redis_url, name, REDIS_PASSWORD)
    finally:
        admin.acl_deluser(name)
        admin.close()


SECRETS = {
    "GEMINI_API_KEY": GEMINI_KEY,
    "database password": DB_PASSWORD,
    "Redis password": REDIS_PASSWORD,
    "RabbitMQ password": AMQP_PASSWORD,
    "DACA_ADMIN_TOKEN": ADMIN_TOKEN,
    "DACA_REVIEWER_PASSWORD": REVIEWER_PASSWORD,
}


def full_session(client: Any, stub: GeminiStub) -> list[str]:
    """Every kind of call a deployment sees, successes and failures; returns all response texts."""
    seen: list[str] = []
    reviewer = ("reviewer", REVIEWER_PASSWORD)
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    def keep(response: httpx.Response) -> httpx.Response:
        seen.append(f"{response.status_code} {dict(response.headers)} {response.text}")
        return response

    assert keep(client.post("/chat/", json={"user_id": "sam", "text": "Hello there"})).status_code == 200
    held = keep(client.post("/chat/?wait=0", json={"user_id": "sam", "text": "urgent: call me"})).json()
    assert keep(client.get("/reviews", auth=reviewer)).status_code == 200
    keep(client.post(f"/reviews/{held['instance_id']}", json={"approved": True}, auth=reviewer))
    eventually(lambda: keep(client.get(f"/chat/{held['instance_id']}")).json()["status"] == "completed")
    stub.plan(500, 500, 500)
    assert keep(client.post("/chat/", json={"user_id": "sam", "text": "fail please"})).status_code == 503
    stub.plan(401)
    keep(client.post("/chat/", json={"user_id": "sam", "text": "bad key now"}))
    for path in ("/health", "/usage", "/conversations/sam", "/analytics/sam", "/openapi.json", "/docs"):
        keep(client.get(path))
    keep(client.get("/reviews?status=decided", auth=reviewer))
    keep(client.get("/reviews", auth=("reviewer", "guess")))
    keep(client.post("/analytics/reset", headers={"Authorization": "Bearer guess"}))
    keep(client.post("/analytics/sam/initialize", json={"message_count": 3}, headers=admin))
    keep(client.post("/analytics/reset", headers=admin))
    keep(client.post("/chat/", content=b"{not json", headers={"Content-Type": "application/json"}))
    return seen


def test_no_secret_in_logs_or_responses_in_process(
    caplog: pytest.LogCaptureFixture,
    settings_factory: Any,
    pg_url: str,
    redis_user: str,
    amqp_user: str,
    amqp_url: str,
) -> None:
    from fastapi.testclient import TestClient

    from daca_kit.web.api import create_api

    purge_queues(amqp_url)
    caplog.set_level(logging.DEBUG)
    with GeminiStub(api_key=GEMINI_KEY, models={MODEL}) as stub:
        settings = settings_factory(
            database_url=with_password(pg_url, "postgres", DB_PASSWORD),  # trust auth: any password works
            redis_url=redis_user,
            amqp_url=amqp_user,
            gemini_api_key=GEMINI_KEY,
            gemini_model=MODEL,
            gemini_base_url=stub.base_url,
            gemini_timeout=2.0,
            reviewer_password=REVIEWER_PASSWORD,
            admin_token=ADMIN_TOKEN,
        )
        kit = bootstrap(settings).start()
        try:
            seen = full_session(TestClient(create_api(kit)), stub)
            assert kit.relay is not None and kit.relay.wait_idle(10)
            shown = [str(kit.backends), str(kit.health(max_age=0)), str(kit.usage()), repr(kit.stores)]
        finally:
            kit.close()
        assert any(r.headers.get("x-goog-api-key") == GEMINI_KEY for r in stub.requests)  # the key was used

    records = "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''} {r.stack_info or ''}" for r in caplog.records
    )
    assert len(caplog.records) > 20  # DEBUG from the kit and its libraries was captured
    assert_no_secret(records + caplog.text, SECRETS, "the log")
    assert_no_secret("\n".join(seen), SECRETS, "an API response")
    assert_no_secret("\n".join(shown), SECRETS, "backends/health/usage text")


def test_reprs_hide_the_database_password(settings_factory: Any) -> None:
    settings = settings_factory(database_url=f"postgresql://postgres:{DB_PASSWORD}@127.0.0.1:1/daca")
    kit = bootstrap(settings)
    try:
        assert_no_secret(repr(settings) + str(settings), SECRETS, "repr(settings)")
        assert_no_secret(repr(kit), SECRETS, "repr(kit)")
    finally:
        kit.stores.database.close()


def test_no_secret_when_a_backend_is_unreachable(
    caplog: pytest.LogCaptureFixture, settings_factory: Any, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    bad_db = f"postgresql://postgres:{DB_PASSWORD}@127.0.0.1:1/daca"
    bad_redis = f"redis://user:{REDIS_PASSWORD}@127.0.0.1:1/0"
    bad_amqp = f"amqp://user:{AMQP_PASSWORD}@127.0.0.1:1/%2F"

    settings = settings_factory(database_url=bad_db, redis_url=bad_redis, amqp_url=bad_amqp)
    with pytest.raises(DacaError) as failure:
        bootstrap(settings).start()
    assert "DATABASE_URL" in str(failure.value)
    assert_no_secret(str(failure.value) + caplog.text, SECRETS, "the start-up error")

    app = AppProcess(tmp_path, env={"DATABASE_URL": bad_db, "REDIS_URL": bad_redis, "AMQP_URL": bad_amqp})
    with pytest.raises(RuntimeError, match="exited"):
        app.start()
    assert "DATABASE_URL" in app.output()
    assert_no_secret(app.output(), SECRETS, "the app's output")


@pytest.mark.slow  # starts `python app.py` with the Gradio UI
def test_no_secret_in_the_real_app_output_or_pages(
    tmp_path: Path, pg_url: str, redis_user: str, amqp_user: str, amqp_url: str
) -> None:
    purge_queues(amqp_url)
    with GeminiStub(api_key=GEMINI_KEY, models={MODEL}) as stub:
        env = {
            "DATABASE_URL": with_password(pg_url, "postgres", DB_PASSWORD),
            "REDIS_URL": redis_user,
            "AMQP_URL": amqp_user,
            "GEMINI_API_KEY": GEMINI_KEY,
            "GEMINI_MODEL": MODEL,
            "GEMINI_BASE_URL": stub.base_url,
            "GEMINI_TIMEOUT": "2",
            "DACA_REVIEWER_PASSWORD": REVIEWER_PASSWORD,
            "DACA_ADMIN_TOKEN": ADMIN_TOKEN,
        }
        with AppProcess(tmp_path, env=env, ui=True) as app, app.client() as client:
            seen = full_session(client, stub)
            for path in ("/", "/config", "/gradio_api/info", "/gradio_api/openapi.json", "/manifest.json"):
                response = client.get(path)
                seen.append(f"{path} {response.status_code} {response.text}")
            assert any(s.startswith("/ 200") for s in seen)  # the UI page was served
            app.stop()  # a graceful stop: shutdown messages are searched too
            output = app.output()
    assert "daca_kit started" in output
    assert_no_secret(output, SECRETS, "the app's output")
    assert_no_secret("\n".join(seen), SECRETS, "a page or API response")
