"""POST /chat/ and GET /chat/{instance_id}: a chat turn, and where it stands."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from daca_kit.core.models import TurnResult
from daca_kit.errors import NotFound
from daca_kit.web.api.deps import KitDep
from daca_kit.web.api.schemas import ChatFailed, ChatPending, ChatReply, ChatRequest, Problem, TurnStatus
from daca_kit.web.auth import AuthDep, peer_of, require_user

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
        float | None, Query(ge=0, le=600, description="Seconds to wait for a review decision")
    ] = None,
) -> JSONResponse:
    await require_user(request, auth, body.user_id, history=False)
    result = await run_in_threadpool(
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


@router.get("/{instance_id}", response_model=TurnStatus, responses={404: {"model": Problem}})
async def get_chat(
    instance_id: str,
    kit: KitDep,
    wait: Annotated[
        float, Query(ge=0, le=600, description="Seconds to wait for the turn to end (a review decision)")
    ] = 0,
) -> JSONResponse:
    result = await run_in_threadpool(kit.turn, instance_id)
    if result is None:
        raise NotFound(f"No chat turn with id '{instance_id}'.")
    if wait > 0 and not result.finished:
        result = await kit.wait_turn(instance_id, wait) or result
    body = result.status_body()
    if body["error"] is None:
        del body["error"]
    return JSONResponse(body)
