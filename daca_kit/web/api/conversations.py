"""GET /conversations/{user_id}: a user's stored turns, newest first."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from daca_kit.web.api.deps import KitDep
from daca_kit.web.api.schemas import Problem, StoredTurn

router = APIRouter(prefix="/conversations", tags=["conversations"])


@router.get("/{user_id}", response_model=list[StoredTurn], responses={422: {"model": Problem}})
async def get_conversations(
    user_id: str, kit: KitDep, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[dict[str, Any]]:
    return await run_in_threadpool(kit.conversations, user_id, limit)
