"""The nightly analytics reset on cron-job.org, created or updated through its REST API.

    plan = plan_reset_job(api_key, "https://you-daca-prototype.hf.space", admin_token)
    print(plan.describe())             # the exact requests, keys and tokens masked; no network call
    result = apply_reset_job(plan)     # GET /jobs, then PATCH /jobs/<jobId> or PUT /jobs
    print(job_status(api_key, result.job_id).describe())   # next execution, and the last runs

The job sends `POST <app>/analytics/reset` every day at 00:00 UTC with the header
`Authorization: Bearer <DACA_ADMIN_TOKEN>`, which the app requires for admin calls.

cron-job.org's API (https://docs.cron-job.org/rest-api.html): base https://api.cron-job.org, the API
key as a bearer token, JSON bodies with `Content-Type: application/json`; `GET /jobs` lists jobs,
`PUT /jobs` with `{"job": {...}}` creates one and answers `{"jobId": N}`, `PATCH /jobs/<jobId>`
with `{"job": {...}}` changes one; `GET /jobs/<jobId>` answers `{"jobDetails": {...}}` with
`nextExecution` (Unix seconds, or null) and `lastStatus`; `GET /jobs/<jobId>/history` answers the last
runs (`history`) and up to 3 predicted next runs (`predictions`). A job's `requestMethod` is a number
(1 is POST); its `extendedData.headers` are sent with every run. The API has no call that runs a job
now: a test run started from the console's job page shows up in the history.

Limits (the same page, as of its 2026-06-19 revision in pschlan/cron-job.org): 100 requests a day per
API key by default (5,000 for sustaining members), and per-call rate limits: creating a job 1 a second
and 5 a minute, listing, reading, updating jobs and reading history 5 a second. Any of them answers
HTTP 429 ("API key quota, resource quota or rate limit exceeded"), which is why a 429 here names all
three. Notebook 02 spends 4 calls: list, create or update, job details, history.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from daca_kit.errors import AUTH, ERROR, DacaError
from daca_kit.ops.checks import FAILED, NOT_CONFIGURED, OK, CheckResult

API_URL = "https://api.cron-job.org"
JOB_TITLE = "daca-kit: nightly analytics reset"
RESET_PATH = "/analytics/reset"
REQUEST_METHOD_POST = 1  # cron-job.org's RequestMethod enum: 0 GET, 1 POST, ...
MASK = "***"


class CronJobError(DacaError):
    """cron-job.org refused or failed a call; the message says what to change."""


@dataclass(frozen=True)
class PlannedRequest:
    """One HTTP request to cron-job.org. `headers` and `body` hold the real secrets; `redacted()` does not."""

    method: str
    url: str
    headers: dict[str, str]
    body: dict[str, Any] | None = None

    def redacted(self) -> dict[str, Any]:
        headers = {
            k: (f"Bearer {MASK}" if k.lower() == "authorization" else v) for k, v in self.headers.items()
        }
        body = copy.deepcopy(self.body)
        job_headers = ((body or {}).get("job") or {}).get("extendedData", {}).get("headers")
        if isinstance(job_headers, dict):
            for key in list(job_headers):
                if key.lower() == "authorization":
                    job_headers[key] = f"Bearer {MASK}"
        return {"method": self.method, "url": self.url, "headers": headers, "body": body}

    def describe(self) -> str:
        shown = self.redacted()
        lines = [f"{shown['method']} {shown['url']}"]
        lines += [f"  {k}: {v}" for k, v in shown["headers"].items()]
        if shown["body"] is not None:
            lines += ["  " + line for line in json.dumps(shown["body"], indent=2).splitlines()]
        return "\n".join(lines)


@dataclass(frozen=True)
class ResetJobPlan:
    """Find the job (GET /jobs), then update it (PATCH /jobs/<jobId>) or create it (PUT /jobs)."""

    api_url: str
    target_url: str
    job: dict[str, Any]
    find: PlannedRequest
    create: PlannedRequest
    update: PlannedRequest  # its URL ends in <jobId>, filled in once the job is found

    def describe(self) -> str:
        return "\n".join(
            [
                f"cron-job.org job '{self.job['title']}' -> POST {self.target_url}",
                "1. look for the job:",
                self.find.describe(),
                "2a. when found, update it:",
                self.update.describe(),
                "2b. otherwise create it:",
                self.create.describe(),
            ]
        )


@dataclass(frozen=True)
class ResetJobResult:
    action: str  # "created" or "updated"
    job_id: int
    target_url: str


def reset_job(
    target_url: str,
    admin_token: str,
    *,
    hour: int = 0,
    minute: int = 0,
    timezone: str = "UTC",
    title: str = JOB_TITLE,
) -> dict[str, Any]:
    """cron-job.org's job object: POST `target_url` daily at hour:minute in `timezone`, with the admin token."""
    if not target_url.startswith(("https://", "http://")):
        raise ValueError(f"'{target_url}' is not an http(s) URL")
    if not admin_token:
        raise ValueError(
            "DACA_ADMIN_TOKEN is empty: the app refuses an unauthenticated reset from the internet"
        )
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise ValueError("hour must be 0-23 and minute 0-59")
    return {
        "url": target_url,
        "enabled": True,
        "title": title,
        "saveResponses": True,
        "requestMethod": REQUEST_METHOD_POST,
        "schedule": {
            "timezone": timezone,
            "expiresAt": 0,
            "hours": [hour],
            "mdays": [-1],
            "minutes": [minute],
            "months": [-1],
            "wdays": [-1],
        },
        "extendedData": {
            "headers": {"Authorization": f"Bearer {admin_token}", "Content-Type": "application/json"},
            "body": "",
        },
    }


def plan_reset_job(
    api_key: str,
    app_url: str,
    admin_token: str,
    *,
    api_url: str = API_URL,
    hour: int = 0,
    minute: int = 0,
    timezone: str = "UTC",
) -> ResetJobPlan:
    """The requests that create or update the nightly reset job of the app at `app_url`. No network call."""
    target = app_url.rstrip("/") + RESET_PATH
    job = reset_job(target, admin_token, hour=hour, minute=minute, timezone=timezone)
    base = api_url.rstrip("/")
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    return ResetJobPlan(
        api_url=base,
        target_url=target,
        job=job,
        find=PlannedRequest("GET", f"{base}/jobs", headers),
        create=PlannedRequest("PUT", f"{base}/jobs", headers, {"job": job}),
        update=PlannedRequest("PATCH", f"{base}/jobs/<jobId>", headers, {"job": job}),
    )


def _explain(response: httpx.Response) -> str:
    status = response.status_code
    if status == 401:
        return (
            "cron-job.org refused the API key: set CRONJOB_API_KEY to a key from the console's Settings page."
        )
    if status == 403:
        return "cron-job.org refused this address: the API key is limited to other IP addresses (console > Settings)."
    if status == 404:
        return "cron-job.org does not know that job: it may have been deleted; run again to create it."
    if status == 429:
        return (
            "cron-job.org answered 429: a limit of its API was reached, either the API key's daily quota "
            "(100 calls a day by default), a resource quota (the number of jobs the account may have), or a "
            "per-call rate limit (creating a job: 1 a second and 5 a minute; other calls: 5 a second). Wait "
            "a minute and run again; if it still answers 429, the daily quota is used up: try tomorrow."
        )
    return f"cron-job.org answered {status}: check the request plan and try again."


def _send(client: httpx.Client, request: PlannedRequest, url: str | None = None) -> Any:
    try:
        response = client.request(
            request.method, url or request.url, headers=request.headers, json=request.body
        )
    except httpx.HTTPError as exc:
        raise CronJobError(
            f"Could not reach cron-job.org ({type(exc).__name__}): check the network."
        ) from None
    if response.status_code >= 400:
        raise CronJobError(_explain(response))
    return response.json() if response.content else {}


def find_job(jobs: list[dict[str, Any]], plan: ResetJobPlan) -> int | None:
    """The id of the kit's reset job: same title, or same URL."""
    for job in jobs:
        if job.get("title") == plan.job["title"] or job.get("url") == plan.target_url:
            return int(job["jobId"])
    return None


def apply_reset_job(plan: ResetJobPlan, *, client: httpx.Client | None = None) -> ResetJobResult:
    """Creates the job, or updates it when one with the same title or URL exists. Network: cron-job.org."""
    own = client is None
    http = client or httpx.Client(timeout=20.0)
    try:
        listing = _send(http, plan.find)
        job_id = find_job(list(listing.get("jobs") or []), plan)
        if job_id is not None:
            _send(http, plan.update, f"{plan.api_url}/jobs/{job_id}")
            return ResetJobResult("updated", job_id, plan.target_url)
        created = _send(http, plan.create)
        if "jobId" not in created:
            raise CronJobError("cron-job.org created the job but sent no jobId: check the console.")
        return ResetJobResult("created", int(created["jobId"]), plan.target_url)
    finally:
        if own:
            http.close()


# cron-job.org's JobStatus enum (docs: "JobStatus").
JOB_STATUS = {
    0: "not executed yet",
    1: "OK",
    2: "failed (DNS error)",
    3: "failed (could not connect to host)",
    4: "failed (HTTP error)",
    5: "failed (timeout)",
    6: "failed (too much response data)",
    7: "failed (invalid URL)",
    8: "failed (internal errors)",
    9: "failed (unknown reason)",
}


def _when(timestamp: Any) -> datetime | None:
    return datetime.fromtimestamp(int(timestamp), UTC) if timestamp else None


@dataclass(frozen=True)
class JobRun:
    """One execution of the job, from its history."""

    date: datetime | None
    status: str
    http_status: int | None
    duration_ms: int | None


@dataclass(frozen=True)
class JobStatus:
    """The job as cron-job.org reports it: enabled, its next execution, and its last runs (newest first)."""

    job_id: int
    url: str
    enabled: bool
    next_execution: datetime | None
    last_status: str
    runs: list[JobRun] = field(default_factory=list)
    predictions: list[datetime] = field(default_factory=list)

    def describe(self) -> str:
        lines = [
            f"cron-job.org job {self.job_id} -> {self.url}: {'enabled' if self.enabled else 'DISABLED'}",
            "next execution: "
            + (f"{self.next_execution:%Y-%m-%d %H:%M} UTC" if self.next_execution else "none predicted"),
            f"last status: {self.last_status}",
        ]
        if not self.runs:
            lines.append(
                "history: no run yet (start a test run from the job's page in the console to see one here)"
            )
        for run in self.runs[:3]:
            when = f"{run.date:%Y-%m-%d %H:%M:%S} UTC" if run.date else "?"
            lines.append(f"run {when}: {run.status}, HTTP {run.http_status}, {run.duration_ms} ms")
        return "\n".join(lines)


def job_status(
    api_key: str, job_id: int, *, api_url: str = API_URL, client: httpx.Client | None = None
) -> JobStatus:
    """The job's details and history (two calls: GET /jobs/<jobId>, GET /jobs/<jobId>/history)."""
    base = api_url.rstrip("/")
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    own = client is None
    http = client or httpx.Client(timeout=20.0)
    try:
        details = _send(http, PlannedRequest("GET", f"{base}/jobs/{job_id}", headers)).get("jobDetails") or {}
        history = _send(http, PlannedRequest("GET", f"{base}/jobs/{job_id}/history", headers))
    finally:
        if own:
            http.close()
    runs = [
        JobRun(
            date=_when(item.get("date")),
            status=JOB_STATUS.get(int(item.get("status") or 0), str(item.get("statusText") or "?")),
            http_status=item.get("httpStatus"),
            duration_ms=item.get("duration"),
        )
        for item in history.get("history") or []
    ]
    runs.sort(key=lambda run: run.date or datetime.min.replace(tzinfo=UTC), reverse=True)
    return JobStatus(
        job_id=int(job_id),
        url=str(details.get("url", "")),
        enabled=bool(details.get("enabled")),
        next_execution=_when(details.get("nextExecution")),
        last_status=JOB_STATUS.get(int(details.get("lastStatus") or 0), "unknown"),
        runs=runs,
        predictions=[p for p in (_when(t) for t in history.get("predictions") or []) if p],
    )


def check_api_key(
    api_key: str | None, *, api_url: str = API_URL, client: httpx.Client | None = None
) -> CheckResult:
    """A doctor-style check of CRONJOB_API_KEY: one `GET /jobs`."""
    if not api_key:
        return CheckResult(
            "cron-job.org",
            "CRONJOB_API_KEY",
            NOT_CONFIGURED,
            "not configured: notebook 02 then prints the nightly reset job instead of creating it.",
        )
    headers = {"Authorization": f"Bearer {api_key}"}
    own = client is None
    http = client or httpx.Client(timeout=15.0)
    try:
        response = http.get(api_url.rstrip("/") + "/jobs", headers=headers)
    except httpx.HTTPError as exc:
        return CheckResult(
            "cron-job.org",
            "CRONJOB_API_KEY",
            FAILED,
            f"Could not reach cron-job.org ({type(exc).__name__}).",
            problem=ERROR,
        )
    finally:
        if own:
            http.close()
    if response.status_code >= 400:
        problem = AUTH if response.status_code in (401, 403) else ERROR
        return CheckResult("cron-job.org", "CRONJOB_API_KEY", FAILED, _explain(response), problem=problem)
    count = len(response.json().get("jobs") or [])
    return CheckResult(
        "cron-job.org", "CRONJOB_API_KEY", OK, f"the API key works ({count} job(s) in the account)."
    )
