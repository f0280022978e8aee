"""Who may do what on the web: the reviewer's login (HTTP Basic), the admin token, and the loopback rule.

    auth = Auth.from_settings(settings)               # a generated reviewer password when none is set
    @router.get("/x") async def x(reviewer: ReviewerDep, _admin: AdminDep): ...

Anyone may chat. Reviewers decide reviews; the admin (cron-job.org, the operator) resets and
initialises analytics. Without DACA_ADMIN_TOKEN, admin calls are accepted from this machine only.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPBasic, HTTPBasicCredentials

from daca_kit.settings import Settings

REVIEWER = "reviewer"


@dataclass
class Auth:
    """The reviewer's password (HTTP Basic, user `reviewer`) and the admin bearer token."""

    reviewer_password: str
    admin_token: str | None
    generated_password: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Auth:
        if settings.reviewer_password is not None:
            password, generated = settings.reviewer_password.get_secret_value(), False
        else:
            password, generated = secrets.token_urlsafe(12), True
        token = settings.admin_token.get_secret_value() if settings.admin_token else None
        return cls(reviewer_password=password, admin_token=token, generated_password=generated)

    def __repr__(self) -> str:
        return f"Auth(admin_token={'set' if self.admin_token else 'unset'})"  # never the secrets

    def check_reviewer(self, username: str, password: str) -> bool:
        user_ok = secrets.compare_digest(username.encode(), REVIEWER.encode())
        pass_ok = secrets.compare_digest(password.encode(), self.reviewer_password.encode())
        return user_ok and pass_ok


def is_loopback(host: str | None) -> bool:
    """Whether `host` (an address or "localhost") is this machine."""
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def is_local(request: Request) -> bool:
    """A request from this machine that no proxy forwarded (a public request reaches a Space through a
    proxy, which adds X-Forwarded-For)."""
    client = request.client.host if request.client else None
    return is_loopback(client) and not request.headers.get("x-forwarded-for")


def get_auth(request: Request) -> Auth:
    return request.app.state.auth  # type: ignore[no-any-return]


AuthDep = Annotated[Auth, Depends(get_auth)]
basic = HTTPBasic(auto_error=False, realm="daca-kit reviewers")


def require_reviewer(
    auth: AuthDep, credentials: Annotated[HTTPBasicCredentials | None, Depends(basic)]
) -> str:
    if credentials is None or not auth.check_reviewer(credentials.username, credentials.password):
        raise HTTPException(
            status_code=401,
            detail="Reviewer login required: HTTP Basic with user 'reviewer' and DACA_REVIEWER_PASSWORD.",
            headers={"WWW-Authenticate": 'Basic realm="daca-kit reviewers"'},
        )
    return REVIEWER


def require_admin(request: Request, auth: AuthDep) -> None:
    if auth.admin_token is None:
        if is_local(request):
            return
        raise HTTPException(
            status_code=403,
            detail="Admin calls are allowed only from this machine until DACA_ADMIN_TOKEN is set.",
        )
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(
        token.strip().encode(), auth.admin_token.encode()
    ):
        raise HTTPException(
            status_code=401,
            detail="Admin token required: send 'Authorization: Bearer <DACA_ADMIN_TOKEN>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )


ReviewerDep = Annotated[str, Depends(require_reviewer)]
AdminDep = Annotated[None, Depends(require_admin)]
