"""Reviews (reviewers only): the pending list, the audit trail, and one decision per review."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from daca_kit.web.api.deps import KitDep
from daca_kit.web.api.schemas import DecidedReview, DecisionRequest, PendingReview, Problem
from daca_kit.web.auth import ReviewerDep

router = APIRouter(prefix="/reviews", tags=["reviews"])
PENDING_KEYS = ("instance_id", "user_id", "message", "proposed_reply", "created_at", "waiting_seconds")


@router.get("", response_model=list[PendingReview] | list[DecidedReview], responses={401: {"model": Problem}})
async def list_reviews(
    kit: KitDep,
    _reviewer: ReviewerDep,
    status: Annotated[str, Query(pattern="^(pending|decided)$")] = "pending",
) -> list[dict[str, Any]]:
    if status == "decided":
        return await run_in_threadpool(kit.reviews.decided)
    rows = await run_in_threadpool(kit.reviews.pending)
    return [{k: r[k] for k in PENDING_KEYS} for r in rows]


@router.post(
    "/{instance_id}",
    response_model=DecidedReview,
    responses={401: {"model": Problem}, 404: {"model": Problem}, 409: {"model": Problem}},
)
async def decide(
    instance_id: str, body: DecisionRequest, kit: KitDep, reviewer: ReviewerDep
) -> dict[str, Any]:
    return await run_in_threadpool(
        lambda: kit.reviews.decide(
            instance_id, approved=body.approved, reply=body.reply, reason=body.reason, reviewer=reviewer
        )
    )
