"""The Chat tab's reply as it is written: a turn run beside the page's event, its pieces shown as they come.

    result = yield from streamed_turn(kit, session, turn, user_id, message, client=None, frame=tuple)

`streamed_turn` runs `daca_kit.core.streaming.stream_turn` in a thread of its own and, while the model
writes, grows the turn's bubble: it yields `frame(messages)`, the event's outputs for the chat's messages
(at most one per `FRAME` seconds), and returns the finished `TurnResult`. A refusal (rate limit, bad input, a backend
down) is raised as the kit's exception, as `Kit.submit` raises it. A sensitive message sends no pieces and
shows the waiting bubble as before. Closing the page ends the event, not the turn: its thread goes on, and
the turn is stored and counted once.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Generator
from typing import Any, TypeVar

from daca_kit.core.kit import Kit
from daca_kit.core.models import TurnResult
from daca_kit.core.streaming import REFUSED, TOKEN, StreamEvent, stream_turn
from daca_kit.web.ui.conversation import chat_messages

T = TypeVar("T")
FRAME = 0.05  # seconds between two updates of the growing bubble (pieces in between are joined)


class TurnCrashed(Exception):
    """The turn failed in an unexpected way; the server's log has the traceback."""


def streamed_turn(
    kit: Kit,
    session: dict[str, Any],
    turn: dict[str, Any],
    user_id: str,
    message: str,
    *,
    client: str | None,
    frame: Callable[[list[dict[str, Any]]], T],
) -> Generator[T, None, TurnResult]:
    """Yields `frame(messages)` as `turn["reply"]` grows; returns the finished turn (see the docstring)."""
    events: queue.Queue[StreamEvent] = queue.Queue()
    threading.Thread(
        target=stream_turn,
        args=(kit, events.put, user_id, message),
        kwargs={"client": client},
        name="daca-chat-turn",
        daemon=True,
    ).start()
    shown = 0.0
    while True:
        event = events.get()
        if event.kind == TOKEN:
            turn["reply"] = (turn.get("reply") or "") + event.data["text"]
            if events.empty() and time.monotonic() - shown >= FRAME:
                shown = time.monotonic()
                yield frame(chat_messages(session))
            continue
        turn["reply"] = None
        if event.kind == REFUSED and event.error is not None:
            raise event.error
        if event.result is None:
            raise TurnCrashed(event.data.get("detail", "the turn failed"))
        return event.result
