"""Streaming replies: a chat turn whose reply reaches its caller piece by piece while the model writes it.

    events = queue.Queue()
    stream_turn(kit, events.put, "alice", "Hello!")   # in a worker thread: token, token, ..., done

A turn streams unless a reviewer must see its reply first: the keyword check reads the user's text, which
is known before the reply is generated, so a sensitive turn never emits a token (only `pending_review`).
Pieces travel on the kit's reply channel (`ReplyChannel`, keyed by instance id) from the model activity
to the caller; the workflow still records the whole reply as the activity's result, so replay, storage
and counting are those of any turn. A caller that goes away (a closed browser, a dropped connection)
stops listening and nothing else: the turn runs to its end, is stored once and counted once.

Where it works: the in-process channel reaches a listener in the process that runs the model activity.
On the local runtime a turn that needs no reviewer runs in its caller's thread, so with any number of
worker processes the request that starts a turn is served by the process that writes its reply. On Dapr
Workflow the engine may hand the activity to another app process: the caller then gets no tokens, and
still gets the final event with the whole reply.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from daca_kit.core.clock import new_id
from daca_kit.core.models import TurnResult
from daca_kit.core.workflow import is_sensitive
from daca_kit.errors import DacaError

if TYPE_CHECKING:
    from daca_kit.core.kit import Kit

log = logging.getLogger(__name__)

TOKEN = "token"  # a piece of the reply: {"text"}
DONE = "done"  # the finished turn: POST /chat/'s 200 body
PENDING_REVIEW = "pending_review"  # held for a reviewer: {user_id, instance_id, status}
ERROR = "error"  # the turn failed: {detail, ...}
REFUSED = "refused"  # the kit refused or could not start the turn (bad input, rate limit, a backend down)
UNEXPECTED = "Something went wrong on the server; the details are in its log. Please try again."


@dataclass(frozen=True)
class StreamEvent:
    """One event of a streaming turn: its `kind`, the JSON `data` a client sees, and for the final event
    the turn (`result`) or, when refused, the kit's exception (`error`), so a caller that has sent nothing
    yet can answer as `POST /chat/` would (422, 429, 503)."""

    kind: str
    data: dict[str, Any]
    result: TurnResult | None = field(default=None, compare=False)
    error: DacaError | None = field(default=None, compare=False)

    @property
    def final(self) -> bool:
        return self.kind != TOKEN


def final_event(result: TurnResult) -> StreamEvent:
    """How a turn that returned from `Kit.submit` ends its stream."""
    if result.status == "failed":
        detail = result.error or "The turn failed."
        data = {"detail": detail, "user_id": result.user_id, "instance_id": result.instance_id}
        return StreamEvent(ERROR, {**data, "status": "failed"}, result=result)
    if not result.finished:
        data = {"user_id": result.user_id, "instance_id": result.instance_id, "status": result.status}
        return StreamEvent(PENDING_REVIEW, data, result=result)
    return StreamEvent(DONE, result.chat_body(), result=result)


def stream_turn(
    kit: Kit,
    emit: Callable[[StreamEvent], None],
    user_id: str,
    text: str,
    *,
    metadata: dict[str, Any] | None = None,
    tags: list[str] | None = None,
    client: str | None = None,
) -> TurnResult | None:
    """Runs one turn in the calling thread (like `Kit.submit`, with the same limits for `client`).

    `emit` gets a `token` event for each piece of the reply as the model writes it (none for a sensitive
    turn), then exactly one final event: `done`, `pending_review`, `error` (the model failed), or
    `refused` (with the kit's exception; None is returned). `emit` runs in the model's thread: it should
    only hand the event on.
    """
    instance_id = new_id()
    replies = kit.activities.replies
    listening = replies is not None and not is_sensitive(text, kit.settings.keywords)
    if replies is not None and listening:
        replies.open(instance_id, lambda piece: emit(StreamEvent(TOKEN, {"text": piece})))
    try:
        result = kit.submit(
            user_id, text, metadata=metadata, tags=tags, instance_id=instance_id, client=client
        )
    except DacaError as exc:
        emit(StreamEvent(REFUSED, {"detail": str(exc)}, error=exc))
        return None
    except Exception:  # noqa: BLE001 - the caller gets a sentence; the log gets the traceback
        log.exception("streaming chat turn failed")
        emit(StreamEvent(ERROR, {"detail": UNEXPECTED}))
        return None
    finally:
        if replies is not None and listening:
            replies.close(instance_id)
    emit(final_event(result))
    return result
