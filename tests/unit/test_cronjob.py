"""The nightly reset job on cron-job.org, against a local stand-in of its REST API (never the real one)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from daca_kit.ops import cronjob
from daca_kit.ops.cronjob import CronJobError, apply_reset_job, check_api_key, plan_reset_job

API_KEY = "cron-api-key-0123456789"
ADMIN_TOKEN = "admin-token-for-the-reset"
APP = "https://someone-daca-prototype.hf.space"


@dataclass
class CronJobApiStub:
    """Speaks the part of cron-job.org's API the kit uses: GET /jobs, PUT /jobs, PATCH /jobs/<id>,
    GET /jobs/<id> and GET /jobs/<id>/history (answers shaped as in the API's documentation)."""

    api_key: str = API_KEY
    jobs: dict[int, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str], Any]] = field(default_factory=list)
    fail_with: int | None = None
    next_id: int = 1000
    history: list[dict[str, Any]] = field(default_factory=list)

    def handle(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        self.requests.append((method, path, headers, body))
        if self.fail_with:
            return self.fail_with, {"error": "stub failure"}
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return 401, {"error": "unauthorized"}
        if method == "GET" and path == "/jobs":
            listing = [
                {"jobId": i, "title": j.get("title"), "url": j.get("url"), "enabled": True}
                for i, j in self.jobs.items()
            ]
            return 200, {"jobs": listing, "someFailed": False}
        if method == "GET" and path.startswith("/jobs/"):
            parts = path.split("/")
            job_id = int(parts[2])
            if job_id not in self.jobs:
                return 404, {"error": "not found"}
            if len(parts) == 4 and parts[3] == "history":
                return 200, {"history": self.history, "predictions": [1767225600, 1767312000]}
            job = self.jobs[job_id]
            details = {"jobId": job_id, "enabled": job.get("enabled", True), "url": job.get("url")}
            return 200, {"jobDetails": {**details, "lastStatus": 0, "nextExecution": 1767225600}}
        if headers.get("content-type") != "application/json":
            return 400, {"error": "payload ignored without Content-Type: application/json"}
        if method == "PUT" and path == "/jobs":
            self.next_id += 1
            self.jobs[self.next_id] = dict(body["job"])
            return 200, {"jobId": self.next_id}
        if method == "PATCH" and path.startswith("/jobs/"):
            job_id = int(path.rsplit("/", 1)[1])
            if job_id not in self.jobs:
                return 404, {"error": "not found"}
            self.jobs[job_id].update(body["job"])
            return 200, {}
        return 404, {"error": "no such method"}


@pytest.fixture
def stub() -> Iterator[tuple[CronJobApiStub, str]]:
    state = CronJobApiStub()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, payload = state.handle(self.command, self.path, headers, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = do_PATCH = _serve

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_plan_is_exact_and_masked_without_any_network_call() -> None:
    plan = plan_reset_job(
        API_KEY, APP + "/", ADMIN_TOKEN, api_url="http://127.0.0.1:9"
    )  # nothing listens there
    assert plan.target_url == f"{APP}/analytics/reset"
    assert (plan.find.method, plan.find.url) == ("GET", "http://127.0.0.1:9/jobs")
    assert (plan.create.method, plan.create.url) == ("PUT", "http://127.0.0.1:9/jobs")
    assert (plan.update.method, plan.update.url) == ("PATCH", "http://127.0.0.1:9/jobs/<jobId>")
    job = plan.create.body["job"]  # type: ignore[index]
    assert job["url"] == plan.target_url and job["requestMethod"] == cronjob.REQUEST_METHOD_POST
    assert job["schedule"]["hours"] == [0] and job["schedule"]["minutes"] == [0]
    assert job["schedule"]["timezone"] == "UTC" and job["schedule"]["mdays"] == [-1]
    assert job["extendedData"]["headers"]["Authorization"] == f"Bearer {ADMIN_TOKEN}"
    shown = plan.describe()
    assert API_KEY not in shown and ADMIN_TOKEN not in shown
    assert "Bearer ***" in shown and f"POST {APP}/analytics/reset" in shown
    # the real secrets stay in the plan, for apply
    assert plan.find.headers["Authorization"] == f"Bearer {API_KEY}"


def test_creates_the_job_when_there_is_none(stub: tuple[CronJobApiStub, str]) -> None:
    state, url = stub
    result = apply_reset_job(plan_reset_job(API_KEY, APP, ADMIN_TOKEN, api_url=url))
    assert result.action == "created" and result.job_id in state.jobs
    assert [(m, p) for m, p, _, _ in state.requests] == [("GET", "/jobs"), ("PUT", "/jobs")]
    job = state.jobs[result.job_id]
    assert job["url"] == f"{APP}/analytics/reset" and job["requestMethod"] == 1 and job["enabled"] is True
    assert job["extendedData"]["headers"]["Authorization"] == f"Bearer {ADMIN_TOKEN}"


def test_updates_the_job_when_it_exists(stub: tuple[CronJobApiStub, str]) -> None:
    state, url = stub
    state.jobs[42] = {"title": cronjob.JOB_TITLE, "url": "https://old.hf.space/analytics/reset"}
    state.jobs[7] = {"title": "someone else's job", "url": "https://example.invalid/"}
    result = apply_reset_job(plan_reset_job(API_KEY, APP, "new-admin-token", api_url=url))
    assert (result.action, result.job_id) == ("updated", 42)
    assert [(m, p) for m, p, _, _ in state.requests] == [("GET", "/jobs"), ("PATCH", "/jobs/42")]
    assert state.jobs[42]["url"] == f"{APP}/analytics/reset"
    assert state.jobs[42]["extendedData"]["headers"]["Authorization"] == "Bearer new-admin-token"
    assert state.jobs[7] == {"title": "someone else's job", "url": "https://example.invalid/"}
    # a second run changes the same job again and creates nothing
    apply_reset_job(plan_reset_job(API_KEY, APP, "new-admin-token", api_url=url))
    assert sorted(state.jobs) == [7, 42]


def test_a_wrong_key_is_explained_without_secrets(stub: tuple[CronJobApiStub, str]) -> None:
    _state, url = stub
    with pytest.raises(CronJobError) as caught:
        apply_reset_job(plan_reset_job("wrong-key-9876", APP, ADMIN_TOKEN, api_url=url))
    message = str(caught.value)
    assert "CRONJOB_API_KEY" in message and "wrong-key-9876" not in message and ADMIN_TOKEN not in message


def test_a_429_names_every_limit_it_may_be(stub: tuple[CronJobApiStub, str]) -> None:
    state, url = stub
    state.fail_with = 429
    with pytest.raises(CronJobError) as caught:
        apply_reset_job(plan_reset_job(API_KEY, APP, ADMIN_TOKEN, api_url=url))
    message = str(caught.value)
    assert "daily quota (100 calls a day" in message and "resource quota" in message
    assert "1 a second and 5 a minute" in message and "Wait a minute" in message


def test_the_job_is_checked_through_the_api(stub: tuple[CronJobApiStub, str]) -> None:
    state, url = stub
    result = apply_reset_job(plan_reset_job(API_KEY, APP, ADMIN_TOKEN, api_url=url))
    status = cronjob.job_status(API_KEY, result.job_id, api_url=url)
    assert status.enabled and status.url == f"{APP}/analytics/reset"
    assert (
        status.next_execution is not None and status.next_execution.isoformat() == "2026-01-01T00:00:00+00:00"
    )
    assert status.runs == [] and "no run yet" in status.describe() and "test run" in status.describe()
    assert [(m, p) for m, p, _, _ in state.requests][-2:] == [
        ("GET", f"/jobs/{result.job_id}"),
        ("GET", f"/jobs/{result.job_id}/history"),
    ]
    # after a test run started from the console, the history shows it
    state.history = [
        {
            "jobId": result.job_id,
            "date": 1767225611,
            "status": 1,
            "statusText": "OK",
            "httpStatus": 200,
            "duration": 239,
        },
        {
            "jobId": result.job_id,
            "date": 1767139211,
            "status": 4,
            "statusText": "HTTP error",
            "httpStatus": 401,
            "duration": 120,
        },
    ]
    status = cronjob.job_status(API_KEY, result.job_id, api_url=url)
    assert [(r.status, r.http_status) for r in status.runs] == [("OK", 200), ("failed (HTTP error)", 401)]
    shown = status.describe()
    assert (
        "2026-01-01 00:00:11 UTC: OK, HTTP 200" in shown and API_KEY not in shown and ADMIN_TOKEN not in shown
    )


def test_check_api_key(stub: tuple[CronJobApiStub, str]) -> None:
    state, url = stub
    state.jobs[1] = {"title": "a", "url": "https://a.invalid/"}
    ok = check_api_key(API_KEY, api_url=url)
    assert ok.status == "ok" and "1 job" in ok.message
    wrong = check_api_key("nope-key", api_url=url)
    assert wrong.failed and wrong.problem == "authentication failed" and "CRONJOB_API_KEY" in wrong.message
    assert check_api_key("").status == "not configured"
    with httpx.Client(timeout=2) as client:
        unreachable = check_api_key(API_KEY, api_url="http://127.0.0.1:9", client=client)
    assert unreachable.failed


def test_the_job_needs_an_admin_token_and_a_url() -> None:
    with pytest.raises(ValueError, match="DACA_ADMIN_TOKEN"):
        plan_reset_job(API_KEY, APP, "")
    with pytest.raises(ValueError, match="http"):
        cronjob.reset_job("ftp://x/analytics/reset", ADMIN_TOKEN)
    with pytest.raises(ValueError, match="hour"):
        cronjob.reset_job(f"{APP}/analytics/reset", ADMIN_TOKEN, hour=24)
