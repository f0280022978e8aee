"""The analytics counters: read a count; initialise one and reset all (admin; cron-job.org resets nightly)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from daca_kit.core.validation import valid_user_id
from daca_kit.errors import CountersError
from daca_kit.web.api.deps import KitDep
from daca_kit.web.api.schemas import Initialized, InitializeRequest, MessageCount, Problem, ResetDone
from daca_kit.web.auth import AdminDep

router = APIRouter(prefix="/analytics", tags=["analytics"])
ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": Problem}, 403: {"model": Problem}}


@router.post("/reset", response_model=ResetDone, responses=ADMIN_ERRORS)
async def reset(kit: KitDep, _admin: AdminDep) -> dict[str, Any]:
    cleared = await run_in_threadpool(kit.reset_counts)
    return {"status": "success", "cleared": cleared}


@router.get("/{user_id}", response_model=MessageCount, responses={422: {"model": Problem}})
async def get_count(user_id: str, kit: KitDep) -> JSONResponse:
    valid_user_id(user_id)
    try:
        count = await run_in_threadpool(kit.message_count, user_id)
    except CountersError as exc:
        return JSONResponse(
            {"user_id": user_id, "message_count": None, "available": False, "detail": str(exc)}
        )
    return JSONResponse({"user_id": user_id, "message_count": count})


@router.post("/{user_id}/initialize", response_model=Initialized, responses=ADMIN_ERRORS)
async def initialize(user_id: str, body: InitializeRequest, kit: KitDep, _admin: AdminDep) -> dict[str, Any]:
    await run_in_threadpool(kit.initialize_count, user_id, body.message_count)
    return {"status": "success", "user_id": user_id, "message_count": body.message_count}
