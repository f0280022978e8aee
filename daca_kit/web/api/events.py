"""POST /events/{topic}: where Dapr pushes subscribed events (components/subscription.yaml), in Dapr mode.

Answers per Dapr's contract: {"status": "SUCCESS"} (done), "RETRY" (deliver again later) or "DROP"
(malformed, never deliverable). Only daprd may call it: with APP_API_TOKEN set, requests must carry it
in `dapr-api-token` (daprd sends it); without it, only requests from this machine are accepted.
"""

from __future__ import annotations

import hmac
import json
import logging
import os

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from daca_kit.core.ports import PushedEvents
from daca_kit.web.auth import from_this_machine, peer_of

log = logging.getLogger(__name__)


def from_dapr(request: Request) -> bool:
    """Whether a delivery comes from daprd: its APP_API_TOKEN when one is set, else this machine, not
    forwarded (another app invoking this route through Dapr arrives with X-Forwarded-For and Forwarded)."""
    token = os.environ.get("APP_API_TOKEN")
    if token:
        return hmac.compare_digest(request.headers.get("dapr-api-token", "").encode(), token.encode())
    return from_this_machine(peer_of(request), request.headers)


def events_router(events: PushedEvents) -> APIRouter:
    """The delivery route for a bus whose broker pushes events (`Kit.pushed_events`)."""
    router = APIRouter(tags=["dapr"], include_in_schema=False)

    @router.post("/events/{topic}")
    async def deliver(topic: str, request: Request) -> JSONResponse:
        if not from_dapr(request):
            return JSONResponse({"detail": "Only the Dapr sidecar may deliver events."}, status_code=403)
        try:
            event = json.loads(await request.body())
        except ValueError:
            log.warning("dropping a %s delivery whose body is not JSON", topic)
            return JSONResponse({"status": "DROP"})
        if not isinstance(event, dict):
            log.warning("dropping a %s delivery that is not a CloudEvent object", topic)
            return JSONResponse({"status": "DROP"})
        status = await run_in_threadpool(events.deliver, topic, event)
        return JSONResponse({"status": status})

    return router
