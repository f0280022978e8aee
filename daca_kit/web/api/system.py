"""GET /health and GET /usage."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from daca_kit.web.api.deps import KitDep
from daca_kit.web.api.schemas import Health, Usage

router = APIRouter(tags=["system"])


@router.get("/health", response_model=Health, response_model_exclude_none=True)
async def health(kit: KitDep) -> dict[str, Any]:
    report = await run_in_threadpool(kit.health)
    return {**report, "runtime": kit.settings.runtime}


@router.get("/usage", response_model=Usage)
async def usage(kit: KitDep) -> dict[str, Any]:
    return await run_in_threadpool(kit.usage)
