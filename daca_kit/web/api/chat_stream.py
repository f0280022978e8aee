"""POST /chat/stream: a chat turn whose reply arrives as Server-Sent Events while the model writes it.

    curl -N -X POST localhost:7860/chat/stream -H 'Content-Type: application/json' \
         -d '{"user_id": "bob", "text": "Hello!"}'
    event: token
    data: {"text": "Hi "}
    ...
    event: done
    data: {"user_id": "bob", "reply": "Hi bob! ...", "metadata": {...}}

The body, who may chat and the limits are POST /chat/'s. A turn refused before it starts (422, 429,
401/403, 503) gets a plain HTTP answer and no stream; otherwise the answer is `text/event-stream`:
`token` events, then one of `done` (POST /chat/'s 200 body), `pending_review` (a sensitive message: no
tokens; read the outcome at GET /chat/{instance_id}) or `error` (`{"detail": sentence}`). The turn runs
in the server's thread pool apart from the response (`daca_kit.core.streaming`): a client that
disconnects stops only its own stream, and its turn is stored and counted once like any other.

Written on Starlette's own StreamingResponse rather than sse-starlette: an event is two lines, and Starlette
already ends the response when the client disconnects; what is left (a keep-alive comment while the model
is silent, pieces that queued up sent in one write) is a few lines here, and no dependency is added.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from daca_kit.core.streaming import ERROR, REFUSED, StreamEvent, stream_turn
from daca_kit.web.api.chat import REFUSALS
from daca_kit.web.api.deps import KitDep
from daca_kit.web.api.schemas import ChatRequest, Problem
from daca_kit.web.auth import AuthDep, peer_of, require_user

router = APIRouter(prefix="/chat", tags=["chat"])

KEEP_ALIVE_SECONDS = 15.0  # a comment line while the model is silent, so proxies keep the stream open
# Turns whose client may have gone: held here so that nothing collects them before they end.
_RUNNING: set[asyncio.Future[object]] = set()


def sse(event: StreamEvent) -> bytes:
    """One event in the text/event-stream format (a refusal after the stream started is an `error`)."""
    kind = ERROR if event.kind == REFUSED else event.kind
    return f"event: {kind}\ndata: {json.dumps(event.data, ensure_ascii=False)}\n\n".encode()


async def _stream(first: StreamEvent, events: asyncio.Queue[StreamEvent]) -> AsyncIterator[bytes]:
    event = first
    while True:
        batch = [event]
        while not event.final and not events.empty():  # pieces that came meanwhile go out in one write
            event = events.get_nowait()
            batch.append(event)
        yield b"".join(sse(e) for e in batch)
        if event.final:
            return
        while True:
            try:
                async with asyncio.timeout(KEEP_ALIVE_SECONDS):  # no task per event, unlike wait_for
                    event = await events.get()
                break
            except TimeoutError:
                yield b": keep-alive\n\n"


def _forget(task: asyncio.Future[object]) -> None:
    _RUNNING.discard(task)
    if not task.cancelled():
        task.exception()  # stream_turn reports its own failures; this only marks the result as read


@router.post(
    "/stream",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string", "format": "event-stream"}}},
            "description": "`token` events `{text}`, then `done` (POST /chat/'s 200 body), "
            "`pending_review` `{user_id, instance_id, status}` or `error` `{detail}`",
        },
        **REFUSALS,
        503: {"model": Problem, "description": "A backend the turn needs is down"},
    },
)
async def post_chat_stream(
    body: ChatRequest, request: Request, kit: KitDep, auth: AuthDep
) -> StreamingResponse:
    await require_user(request, auth, body.user_id, history=False)
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[StreamEvent] = asyncio.Queue()

    def emit(event: StreamEvent) -> None:  # in the turn's thread
        try:
            loop.call_soon_threadsafe(events.put_nowait, event)
        except RuntimeError:
            pass  # the server's loop has stopped: nobody is left to hear it

    task: asyncio.Future[object] = asyncio.ensure_future(
        run_in_threadpool(
            stream_turn,
            kit,
            emit,
            body.user_id,
            body.text,
            metadata=body.metadata,
            tags=body.tags,
            client=auth.visitor(peer_of(request), request.headers),
        )
    )
    _RUNNING.add(task)
    task.add_done_callback(_forget)
    first = await events.get()
    if first.kind == REFUSED and first.error is not None:
        raise first.error  # before the stream: the same answer as POST /chat/ (see api.errors)
    return StreamingResponse(
        _stream(first, events),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
