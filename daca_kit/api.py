"""The REST API (FastAPI), compatible with the tutorial's curl calls.

    api = create_api(kit, auth=Auth.from_settings(kit.settings))
    uvicorn.run(api, port=7860)            # app.py mounts the Gradio UI on the same app

Routes are declared here, before the UI is mounted at "/", as Gradio requires.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from daca_kit.errors import (
    AlreadyDecided,
    BackendError,
    CountersError,
    DacaError,
    InputError,
    NotFound,
    RateLimited,
)
from daca_kit.kit import Kit, TurnResult
from daca_kit.ratelimit import retry_after_header
from daca_kit.settings import Settings

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
REVIEWER = "reviewer"


@dataclass
class Auth:
    """Who may do what: the reviewer's password (HTTP Basic) and the admin bearer token."""

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

    def check_reviewer(self, username: str, password: str) -> bool:
        user_ok = secrets.compare_digest(username.encode(), REVIEWER.encode())
        pass_ok = secrets.compare_digest(password.encode(), self.reviewer_password.encode())
        return user_ok and pass_ok


# -- request and response shapes ----------------------------------------------------------------
class ChatRequest(BaseModel):
    """The tutorial's message body."""

    user_id: str
    text: str
    metadata: dict[str, Any] | None = None
    tags: list[str] | None = Field(default=None, max_length=50)


class InitializeRequest(BaseModel):
    message_count: int


class DecisionRequest(BaseModel):
    approved: bool
    reply: str | None = None
    reason: str | None = None


# -- dependencies -------------------------------------------------------------------------------
def get_kit(request: Request) -> Kit:
    return request.app.state.kit  # type: ignore[no-any-return]


def get_auth(request: Request) -> Auth:
    return request.app.state.auth  # type: ignore[no-any-return]


KitDep = Annotated[Kit, Depends(get_kit)]
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


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def require_admin(request: Request, auth: AuthDep) -> None:
    header = request.headers.get("authorization", "")
    if auth.admin_token is None:
        if _is_loopback(request.client.host if request.client else None) and not request.headers.get(
            "x-forwarded-for"
        ):
            return
        raise HTTPException(
            status_code=403,
            detail="Admin calls are allowed only from this machine until DACA_ADMIN_TOKEN is set.",
        )
    scheme, _, token = header.partition(" ")
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


# -- routers ------------------------------------------------------------------------------------
def chat_body(result: TurnResult) -> dict[str, Any]:
    return {
        "user_id": result.user_id,
        "reply": result.reply,
        "metadata": {
            "timestamp": result.timestamp,
            "session_id": result.session_id,
            "instance_id": result.instance_id,
            "status": result.status,
        },
    }


def turn_response(result: TurnResult) -> JSONResponse:
    if result.status == "failed":
        return JSONResponse(
            status_code=503,
            content={
                "detail": result.error or "The turn failed.",
                "user_id": result.user_id,
                "instance_id": result.instance_id,
                "status": "failed",
            },
        )
    if not result.finished:
        return JSONResponse(
            status_code=202,
            content={"user_id": result.user_id, "instance_id": result.instance_id, "status": result.status},
            headers={"Location": f"/chat/{result.instance_id}"},
        )
    return JSONResponse(status_code=200, content=chat_body(result))


chat = APIRouter(prefix="/chat", tags=["chat"])


@chat.post("/", responses={202: {"description": "Held for review"}, 429: {"description": "Rate limited"}})
async def post_chat(
    body: ChatRequest,
    kit: KitDep,
    wait: Annotated[
        float | None, Query(ge=0, le=600, description="Seconds to wait for a review decision")
    ] = None,
) -> JSONResponse:
    result = await run_in_threadpool(
        kit.submit, body.user_id, body.text, metadata=body.metadata, tags=body.tags
    )
    timeout = kit.settings.chat_wait if wait is None else wait
    if not result.finished and timeout > 0:
        result = await kit.wait_turn(result.instance_id, timeout) or result
    return turn_response(result)


@chat.get("/{instance_id}")
async def get_chat(instance_id: str, kit: KitDep) -> dict[str, Any]:
    result = await run_in_threadpool(kit.turn, instance_id)
    if result is None:
        raise NotFound(f"No chat turn with id '{instance_id}'.")
    return {
        "instance_id": result.instance_id,
        "user_id": result.user_id,
        "status": result.status,
        "reply": result.reply if result.finished else None,
        **({"error": result.error} if result.error else {}),
        "timestamp": result.timestamp,
    }


conversations = APIRouter(prefix="/conversations", tags=["conversations"])


@conversations.get("/{user_id}")
async def get_conversations(
    user_id: str, kit: KitDep, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[dict[str, Any]]:
    return await run_in_threadpool(kit.conversations, user_id, limit)  # type: ignore[no-any-return]


analytics = APIRouter(prefix="/analytics", tags=["analytics"])


@analytics.post("/reset")
async def reset(kit: KitDep, _admin: AdminDep) -> dict[str, Any]:
    cleared = await run_in_threadpool(kit.reset_counts)
    return {"status": "success", "cleared": cleared}


@analytics.get("/{user_id}")
async def get_count(user_id: str, kit: KitDep) -> JSONResponse:
    Kit.validate(user_id, "x")
    try:
        count = await run_in_threadpool(kit.message_count, user_id)
    except CountersError as exc:
        return JSONResponse(
            {"user_id": user_id, "message_count": None, "available": False, "detail": str(exc)}
        )
    return JSONResponse({"user_id": user_id, "message_count": count})


@analytics.post("/{user_id}/initialize")
async def initialize(user_id: str, body: InitializeRequest, kit: KitDep, _admin: AdminDep) -> dict[str, Any]:
    await run_in_threadpool(kit.initialize_count, user_id, body.message_count)
    return {"status": "success", "user_id": user_id, "message_count": body.message_count}


reviews = APIRouter(prefix="/reviews", tags=["reviews"])


@reviews.get("")
async def list_reviews(
    kit: KitDep,
    _reviewer: ReviewerDep,
    status: Annotated[str, Query(pattern="^(pending|decided)$")] = "pending",
) -> list[dict[str, Any]]:
    if status == "decided":
        return await run_in_threadpool(kit.decided_reviews)  # type: ignore[no-any-return]
    rows = await run_in_threadpool(kit.pending_reviews)
    keys = ("instance_id", "user_id", "message", "proposed_reply", "created_at", "waiting_seconds")
    return [{k: r[k] for k in keys} for r in rows]


@reviews.post("/{instance_id}")
async def decide(
    instance_id: str, body: DecisionRequest, kit: KitDep, reviewer: ReviewerDep
) -> dict[str, Any]:
    return await run_in_threadpool(  # type: ignore[no-any-return]
        lambda: kit.decide(
            instance_id, approved=body.approved, reply=body.reply, reason=body.reason, reviewer=reviewer
        )
    )


system = APIRouter(tags=["system"])


@system.get("/health")
async def health(kit: KitDep) -> dict[str, Any]:
    report = await run_in_threadpool(kit.health)
    return {**report, "runtime": kit.settings.runtime}


@system.get("/usage")
async def usage(kit: KitDep) -> dict[str, Any]:
    return await run_in_threadpool(kit.usage)  # type: ignore[no-any-return]


# -- errors -------------------------------------------------------------------------------------
def _validation_sentence(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            return "The request body is not valid JSON."
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "Invalid request: " + "; ".join(parts) + "."


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": _validation_sentence(exc)})

    @app.exception_handler(DacaError)
    async def _daca(_request: Request, exc: DacaError) -> JSONResponse:
        headers = {}
        if isinstance(exc, InputError):
            status = 422
        elif isinstance(exc, RateLimited):
            status = 429
            headers["Retry-After"] = retry_after_header(exc.retry_after)
        elif isinstance(exc, NotFound):
            status = 404
        elif isinstance(exc, AlreadyDecided):
            status = 409
        elif isinstance(exc, BackendError):
            status = 503
        else:
            status = 500
        if status >= 500:
            log.warning("request failed: %s", exc)
        return JSONResponse(status_code=status, content={"detail": str(exc)}, headers=headers)


class BodyLimit:
    """Refuses request bodies over `limit` bytes with 413 before they are read into memory."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int = MAX_BODY,
        paths: tuple[str, ...] = ("/chat", "/analytics", "/reviews", "/events"),
    ) -> None:
        self.app, self.limit, self.paths = app, limit, paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.paths):
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await _too_large(send, self.limit)
            return
        received = 0

        async def limited() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise HTTPException(
                        status_code=413, detail=f"The request body is over {self.limit} bytes."
                    )
            return message

        await self.app(scope, limited, send)


async def _too_large(send: Send, limit: int) -> None:
    import json

    body = json.dumps({"detail": f"The request body is over {limit} bytes."}).encode()
    await send(
        {"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})


def create_api(kit: Kit, *, auth: Auth | None = None) -> FastAPI:
    """The REST API on a kit that the caller starts and closes."""
    app = FastAPI(
        title="daca_kit",
        description="Chat with human review, stored turns, analytics counters and a free-tier meter.",
        version="0.1.0",
    )
    app.state.kit = kit
    app.state.auth = auth or Auth.from_settings(kit.settings)
    install_error_handlers(app)
    for router in (chat, conversations, analytics, reviews, system):
        app.include_router(router)
    if kit.settings.runtime == "dapr":
        # Dapr delivers subscribed events (components/subscription.yaml) to POST /events/{topic}.
        from daca_kit.adapters.dapr import dapr_router

        app.include_router(dapr_router(kit))
    app.add_middleware(BodyLimit)
    return app
