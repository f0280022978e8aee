"""POST /chat/ and GET /chat/{instance_id}: a chat turn, and where it stands.

POST /chat/ is the hot path, so a well-formed request skips FastAPI's per-request work (dependencies,
parameter solving): `install_fast_chat` puts a plain ASGI route for it in front of the documented one,
which does the same turn the same way. Whatever it does not accept as well-formed (invalid JSON or
fields, another content type, unknown query parameters) it hands to the documented route unchanged, so
errors are FastAPI's own; and what the turn raises goes to the app's error handlers either way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qsl

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.routing import Match, Route, Router
from starlette.types import Receive, Scope, Send

from daca_kit.core.kit import Kit
from daca_kit.core.models import TurnResult
from daca_kit.errors import NotFound
from daca_kit.web.api.deps import KitDep
from daca_kit.web.api.schemas import ChatFailed, ChatPending, ChatReply, ChatRequest, Problem, TurnStatus
from daca_kit.web.asgi import read_body, replaying
from daca_kit.web.auth import Auth, AuthDep, peer_of, require_user
from daca_kit.web.threads import Threads

T = TypeVar("T")
# The threads that run turns (each blocks on the database, the counters and the model): as many as
# Starlette's default pool, with a lighter hand-off than anyio's or an executor's (see web/threads.py).
_TURN_THREADS = Threads(40, "turn")
MAX_WAIT = 600.0
_PLAIN_NUMBER = re.compile(r"[0-9]{1,6}(\.[0-9]{1,6})?")


async def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Runs blocking `fn` in a turn thread, without blocking the event loop."""
    return await _TURN_THREADS.run(fn, *args, **kwargs)


router = APIRouter(prefix="/chat", tags=["chat"])

# How both chat routes (this one and POST /chat/stream) refuse a turn before it starts.
REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "A bound user id (`...@daca`, `...@hf`) without its token"},
    403: {"model": Problem, "description": "Another user's token"},
    422: {"model": Problem, "description": "Invalid input"},
    429: {"model": Problem, "description": "Rate limited (Retry-After)"},
}


def turn_response(result: TurnResult) -> JSONResponse:
    """200 with the reply, 202 while a reviewer has not decided, 503 when the model failed."""
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
    return JSONResponse(status_code=200, content=result.chat_body())


@router.post(
    "/",
    response_model=ChatReply,
    responses={
        202: {"model": ChatPending, "description": "Held for review longer than `wait`"},
        **REFUSALS,
        503: {"model": ChatFailed, "description": "The reply model failed"},
    },
)
async def post_chat(
    body: ChatRequest,
    request: Request,
    kit: KitDep,
    auth: AuthDep,
    wait: Annotated[
        float | None, Query(ge=0, le=MAX_WAIT, description="Seconds to wait for a review decision")
    ] = None,
) -> JSONResponse:
    return await chat_turn(request, kit, auth, body, wait)


async def chat_turn(
    request: Request, kit: Kit, auth: Auth, body: ChatRequest, wait: float | None
) -> JSONResponse:
    """The turn of POST /chat/, from either route."""
    await require_user(request, auth, body.user_id, history=False)
    result = await in_thread(
        kit.submit,
        body.user_id,
        body.text,
        metadata=body.metadata,
        tags=body.tags,
        client=auth.visitor(peer_of(request), request.headers),
    )
    timeout = kit.settings.chat_wait if wait is None else wait
    if not result.finished and timeout > 0:
        result = await kit.wait_turn(result.instance_id, timeout) or result
    return turn_response(result)


_PASS_ON = "daca.chat.documented"  # in a request's scope: FastChat passed it on to the documented route


class FastChat:
    """The plain ASGI route of POST /chat/ (see the module docstring); `router` is the app's, whose
    documented route gets what this one passes on."""

    def __init__(self, router: Router) -> None:
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_body(receive)
        if body is None:
            return
        parsed = _well_formed(scope, body)
        if parsed is None:
            scope[_PASS_ON] = True
            await self.router(scope, replaying(body, receive), send)
            return
        request = Request(scope, receive)
        state = request.app.state
        response = await chat_turn(request, state.kit, state.auth, *parsed)
        await response(scope, receive, send)


def _well_formed(scope: Scope, body: bytes) -> tuple[ChatRequest, float | None] | None:
    """The request's body and `wait` when FastAPI would accept them as they are; None otherwise."""
    content_type = next((v for k, v in scope["headers"] if k == b"content-type"), b"")
    if content_type.split(b";")[0].strip().lower() != b"application/json":
        return None
    wait: float | None = None
    query = scope.get("query_string") or b""
    if query:
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
        if len(pairs) != 1 or pairs[0][0] != "wait":
            return None
        if not _PLAIN_NUMBER.fullmatch(pairs[0][1]):
            return None  # FastAPI reads other spellings (or refuses them) itself
        wait = float(pairs[0][1])
        if wait > MAX_WAIT:
            return None
    try:
        return ChatRequest.model_validate_json(body), wait
    except ValidationError:
        return None


class _FastChatRoute(Route):
    """Matches POST /chat/ unless FastChat passed the request on."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope.get(_PASS_ON):
            return Match.NONE, {}
        return super().matches(scope)


def install_fast_chat(app: FastAPI) -> None:
    """Puts `FastChat` in front of the documented POST /chat/ route (OpenAPI still shows that one)."""
    app.router.routes.insert(0, _FastChatRoute("/chat/", FastChat(app.router), methods=["POST"]))


@router.get("/{instance_id}", response_model=TurnStatus, responses={404: {"model": Problem}})
async def get_chat(
    instance_id: str,
    kit: KitDep,
    wait: Annotated[
        float, Query(ge=0, le=MAX_WAIT, description="Seconds to wait for the turn to end (a review decision)")
    ] = 0,
) -> JSONResponse:
    result = await in_thread(kit.turn, instance_id)
    if result is None:
        raise NotFound(f"No chat turn with id '{instance_id}'.")
    if wait > 0 and not result.finished:
        result = await kit.wait_turn(instance_id, wait) or result
    body = result.status_body()
    if body["error"] is None:
        del body["error"]
    return JSONResponse(body)
