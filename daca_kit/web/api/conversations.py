"""GET /conversations/{user_id}: a user's stored turns, newest first, for that user (its token), a
reviewer or the admin (see daca_kit.web.identity)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from daca_kit.web.api.deps import KitDep
from daca_kit.web.api.schemas import Problem, StoredTurn
from daca_kit.web.auth import AuthDep, require_user

router = APIRouter(prefix="/conversations", tags=["conversations"])


@router.get(
    "/{user_id}",
    response_model=list[StoredTurn],
    responses={401: {"model": Problem}, 403: {"model": Problem}, 422: {"model": Problem}},
)
async def get_conversations(
    user_id: str,
    request: Request,
    kit: KitDep,
    auth: AuthDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[dict[str, Any]]:
    await require_user(request, auth, user_id, history=True)
    return await run_in_threadpool(kit.conversations, user_id, limit)
