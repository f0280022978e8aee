"""The running app (`python app.py`, UI and REST on one port) probed as anonymous visitors on a public URL,
behind one trusted proxy as on a Space: each visitor is an X-Forwarded-For address.

Every path has a body limit (memory measured as the process's RSS); uploads are refused (the app takes no
files); one visitor's messages are limited whatever user ids it picks, and so are the reviews it can keep
pending, beside a cap on all pending reviews; Gradio's monitoring is closed and a bad call logs no
traceback; security headers and a same-origin CORS policy hold on every path; backend host names go only
to reviewers; a password in a URL's query never reaches the log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from daca_kit.adapters.sql import SqlDatabase, describe_url
from daca_kit.settings import setting_names
from tests.support.appproc import AppProcess

pytestmark = pytest.mark.integration

CLIENT_LIMIT, PER_CLIENT_PENDING, ALL_PENDING = 10, 2, 4
MB = 1024 * 1024


def visitor(n: int) -> dict[str, str]:
    return {"X-Forwarded-For": f"203.0.113.{n}"}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    env = {
        "DACA_TRUSTED_PROXIES": "1",
        "DACA_CLIENT_RATE_LIMIT": f"{CLIENT_LIMIT}/minute",
        "DACA_MAX_PENDING_PER_CLIENT": str(PER_CLIENT_PENDING),
        "DACA_MAX_PENDING_REVIEWS": str(ALL_PENDING),
    }
    with AppProcess(tmp_path_factory.mktemp("public"), env=env, ui=True, startup_timeout=90) as app:
        yield app


@pytest.fixture
def http(app: AppProcess) -> Iterator[httpx.Client]:
    with app.client(timeout=60) as client:
        yield client


def rss_mb(app: AppProcess) -> float:
    return app.status()["VmRSS"] / 1024


def gradio_call(fn_index: int, data: list[Any]) -> dict[str, Any]:
    return {"data": data, "fn_index": fn_index, "session_hash": uuid.uuid4().hex[:10], "event_data": None}


def test_every_path_has_a_body_limit(app: AppProcess, http: httpx.Client) -> None:
    huge = json.dumps(gradio_call(0, ["x" * (50 * MB), "y"])).encode()
    http.get("/health")
    before = rss_mb(app)
    for path in ("/gradio_api/queue/join", "/gradio_api/call/chat", "/gradio_api/run/chat", "/anything"):
        response = http.post(path, content=huge, headers={"Content-Type": "application/json", **visitor(1)})
        assert response.status_code == 413, (path, response.status_code)
        chunked = http.post(
            path, content=iter([huge[i : i + MB] for i in range(0, len(huge), MB)]), headers=visitor(1)
        )
        assert chunked.status_code == 413, (path, chunked.status_code)  # no Content-Length: cut while read
    assert rss_mb(app) - before < 30, f"RSS grew from {before:.0f} MB to {rss_mb(app):.0f} MB"


def test_uploads_are_refused(app: AppProcess, http: httpx.Client) -> None:
    files = [("files", (f"f{i}.bin", b"\0" * 1000, "application/octet-stream")) for i in range(5)]
    response = http.post("/gradio_api/upload", files=files, headers=visitor(2))
    assert response.status_code in (403, 404, 405, 413), response.status_code
    assert str(app.workdir) not in response.text and "/tmp" not in response.text
    for path in ("daca.db", str(app.workdir / "daca.db"), "app.log"):  # files beside the app are not served
        assert http.get(f"/gradio_api/file={path}", headers=visitor(2)).status_code in (403, 404), path


def test_one_visitor_is_limited_whatever_user_ids_it_picks(http: httpx.Client) -> None:
    codes = [
        http.post("/chat/", json={"user_id": f"fresh-{i}", "text": "hi"}, headers=visitor(3)).status_code
        for i in range(CLIENT_LIMIT + 5)
    ]
    assert codes == [200] * CLIENT_LIMIT + [429] * 5
    refused = http.post("/chat/", json={"user_id": "fresh-x", "text": "hi"}, headers=visitor(3))
    assert 1 <= int(refused.headers["retry-after"]) <= 60 and "your address" in refused.json()["detail"]
    assert http.post("/chat/", json={"user_id": "calm", "text": "hi"}, headers=visitor(4)).status_code == 200


def test_nobody_can_lock_a_user_out_by_writing_in_its_name(http: httpx.Client) -> None:
    user = http.post("/users", headers=visitor(5)).json()
    for i in range(25):
        sent = http.post(
            "/chat/", json={"user_id": user["user_id"], "text": f"spam {i}"}, headers=visitor(6 + i)
        )
        assert sent.status_code == 401
    mine = http.post(
        "/chat/",
        json={"user_id": user["user_id"], "text": "hello"},
        headers={**visitor(5), "Authorization": f"Bearer {user['token']}"},
    )
    assert mine.status_code == 200


def test_pending_reviews_are_capped_per_visitor_and_in_all(app: AppProcess, http: httpx.Client) -> None:
    def urgent(n: int, user: str) -> int:
        body = {"user_id": user, "text": "urgent: help"}
        return http.post("/chat/?wait=0", json=body, headers=visitor(n)).status_code

    assert [urgent(40, f"p{i}") for i in range(PER_CLIENT_PENDING + 3)] == [202] * PER_CLIENT_PENDING + [
        429
    ] * 3
    assert [urgent(41 + i, f"q{i}") for i in range(ALL_PENDING)] == [202] * (
        ALL_PENDING - PER_CLIENT_PENDING
    ) + [429] * PER_CLIENT_PENDING
    pending = http.get("/reviews", auth=app.reviewer_auth).json()
    assert len(pending) == ALL_PENDING
    for review in pending:  # decided reviews free their places
        http.post(f"/reviews/{review['instance_id']}", json={"approved": False}, auth=app.reviewer_auth)
    assert urgent(40, "p-again") == 202


def test_monitoring_is_closed_and_a_bad_call_logs_no_traceback(app: AppProcess, http: httpx.Client) -> None:
    for path in ("/monitoring", "/monitoring/summary", "/gradio_api/monitoring/summary"):
        response = http.get(path, headers=visitor(7))
        assert response.status_code in (403, 404), (path, response.status_code)
        assert "fn_index" not in response.text and "review" not in response.text
    lines = len(app.output().splitlines())
    for _ in range(5):
        http.post("/gradio_api/queue/join", json=gradio_call(9999, ["x"]), headers=visitor(7))
    logged = app.output().splitlines()[lines:]
    assert not [line for line in logged if "Traceback" in line or line.startswith("  File ")], logged[:20]


def test_user_ids_are_checked_whole(http: httpx.Client) -> None:
    for bad in ("inp2\n", "inp2\r\n", "\ninp2"):
        response = http.post("/chat/", json={"user_id": bad, "text": "hi"}, headers=visitor(8))
        assert response.status_code == 422, repr(bad)


@pytest.mark.parametrize("path", ["/", "/config", "/gradio_api/info", "/health", "/chat/nope", "/docs"])
def test_security_headers_and_no_cross_origin_credentials(http: httpx.Client, path: str) -> None:
    headers = {"Host": "daca.example.org", "Origin": "https://evil.example", **visitor(9)}
    response = http.get(path, headers=headers)
    assert response.headers.get("x-content-type-options") == "nosniff", path
    assert "frame-ancestors" in response.headers.get("content-security-policy", ""), path
    assert response.headers.get("x-frame-options") in ("DENY", "SAMEORIGIN"), path
    assert response.headers.get("referrer-policy"), path
    assert response.headers.get("access-control-allow-origin") not in ("https://evil.example", "*"), path
    preflight = http.options(
        path,
        headers={
            **headers,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.headers.get("access-control-allow-origin") != "https://evil.example", path


def test_host_names_go_only_to_reviewers(tmp_path: Path, redis_url: str) -> None:
    with AppProcess(tmp_path, env={"REDIS_URL": redis_url, "DACA_TRUSTED_PROXIES": "1"}) as app:
        with app.client() as http:
            for path in ("/health", "/usage"):
                public = http.get(path, headers=visitor(10))
                assert public.status_code == 200 and "127.0.0.1" not in public.text, (path, public.text)
            assert "127.0.0.1" in http.get("/health", auth=app.reviewer_auth, headers=visitor(10)).text


def test_a_password_in_a_url_query_is_masked_where_the_url_is_shown(tmp_path: Path, pg_url: str) -> None:
    secret = "qpw-SECRET-5f2e91"
    url = (
        pg_url.rsplit("/", 1)[0] + f"/no_such_db?password={secret}&sslpassword={secret}&application_name=daca"
    )
    env = {k: v for k, v in os.environ.items() if k not in setting_names()} | {"DATABASE_URL": url}
    doctor = subprocess.run(
        [sys.executable, "-m", "daca_kit.cli", "doctor"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert "no_such_db" in doctor.stdout + doctor.stderr  # the doctor names the database it tried
    assert secret not in doctor.stdout + doctor.stderr
    assert secret not in describe_url(url) and secret not in repr(SqlDatabase(url))
