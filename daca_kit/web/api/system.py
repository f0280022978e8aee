"""GET /health and GET /usage: every backend's state and the free-tier meter. Backend host names (in the
backends' labels and in their error sentences) go only to reviewers and the admin; anyone else reads them
with each configured service's host replaced by "…"."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.security import HTTPBasicCredentials
from starlette.concurrency import run_in_threadpool

from daca_kit.errors import RateLimited
from daca_kit.settings import Settings
from daca_kit.web.api.deps import KitDep
from daca_kit.web.api.schemas import Health, Usage
from daca_kit.web.auth import Auth, AuthDep, basic, is_admin_token, peer_of

router = APIRouter(tags=["system"])
HIDDEN = "…"


@router.get("/health", response_model=Health, response_model_exclude_none=True)
async def health(request: Request, kit: KitDep, auth: AuthDep) -> dict[str, Any]:
    report = await run_in_threadpool(kit.health)
    worker = getattr(request.app.state, "worker", None)
    if worker is not None and await privileged(request, auth):
        report = {**report, "worker": worker}  # which of the WEB_CONCURRENCY processes answered
    return await shown_to(request, auth, kit.settings, {**report, "runtime": kit.settings.runtime})


@router.get("/usage", response_model=Usage)
async def usage(request: Request, kit: KitDep, auth: AuthDep) -> dict[str, Any]:
    return await shown_to(request, auth, kit.settings, await run_in_threadpool(kit.usage))


async def shown_to(
    request: Request, auth: Auth, settings: Settings, report: dict[str, Any]
) -> dict[str, Any]:
    """`report` as the caller may see it: whole for a reviewer or the admin, else without host names."""
    if await privileged(request, auth):
        return report
    hosts = service_hosts(settings)
    return scrub(report, hosts) if hosts else report


async def privileged(request: Request, auth: Auth) -> bool:
    """A reviewer's HTTP Basic login, the admin token, or the operator on this machine (the admin rule)."""
    if auth.admin_token is None and auth.is_local(peer_of(request), request.headers):
        return True
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return is_admin_token(auth, credential.strip())
    credentials: HTTPBasicCredentials | None = await basic(request)
    if credentials is None:
        return False
    client = auth.client_of(peer_of(request), request.headers.get("x-forwarded-for"))
    try:
        return auth.sign_in(credentials.username, credentials.password, client) is not None
    except RateLimited:
        return False


def service_hosts(settings: Settings) -> list[str]:
    """The host names (and host:port) of every configured service, longest first."""
    urls = [
        settings.database_url,
        settings.redis_url.get_secret_value() if settings.redis_url else None,
        settings.amqp_url.get_secret_value() if settings.amqp_url else None,
        settings.upstash_redis_rest_url,
        settings.gemini_base_url,
        settings.dapr_http_endpoint,
    ]
    hosts: set[str] = set()
    for url in urls:
        if not url or "://" not in url:
            continue
        try:
            parts = urlsplit(url)
            hostname = parts.hostname
        except ValueError:
            continue
        if hostname:
            hosts.update({hostname, parts.netloc.rpartition("@")[2]})
    return sorted(hosts, key=len, reverse=True)


def scrub(value: Any, hosts: list[str]) -> Any:
    if isinstance(value, str):
        for host in hosts:
            value = value.replace(host, HIDDEN)
        return value
    if isinstance(value, dict):
        return {k: scrub(v, hosts) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, hosts) for v in value]
    return value
