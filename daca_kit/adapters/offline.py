"""The offline reply model: deterministic, no network, clearly labelled.

    model = OfflineReplyModel()            # what runs when GEMINI_API_KEY is unset
    model = OfflineReplyModel(delay=0.5)   # emulates a remote model's latency (DACA_OFFLINE_DELAY)
    model = OfflineReplyModel(chunk_delay=0.05)   # and its pace, a pause per word (DACA_OFFLINE_CHUNK_DELAY)
    reply = model.stream(request, print)          # word by word

Timing, the same whether it streams or not: `delay` before the reply begins, then `chunk_delay` before
each word, so the first word arrives after `delay + chunk_delay` and the whole reply after
`delay + words * chunk_delay` (what `generate` takes).

Its replies show what the workflow fed it (the user's message count and recent history), so the flow
is visible without an account.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from daca_kit.core.models import Backend, Reply, ReplyRequest

OFFLINE_NOTE = "offline reply model: set GEMINI_API_KEY for Gemini replies"
_WORDS = re.compile(r"\S+\s*")


def words(text: str) -> list[str]:
    """`text` in pieces of one word and the space after it (joined, they give `text` back)."""
    return _WORDS.findall(text)


class OfflineReplyModel:
    """`ReplyModel` without a network: echoes what the workflow fed it."""

    name = "offline"
    backend = Backend("offline", "offline", "offline model (embedded, no network)", embedded=True)

    def __init__(self, *, delay: float = 0.0, chunk_delay: float = 0.0) -> None:
        self.delay = delay
        self.chunk_delay = chunk_delay
        self.calls = 0

    def generate(self, request: ReplyRequest) -> Reply:
        self.calls += 1
        reply = self._reply(request)
        pause = self.delay + self.chunk_delay * len(words(reply.text))
        if pause:
            time.sleep(pause)
        return reply

    def stream(self, request: ReplyRequest, on_chunk: Callable[[str], None]) -> Reply:
        self.calls += 1
        reply = self._reply(request)
        due = time.monotonic() + self.delay
        for piece in words(reply.text):
            # On a schedule from the start, like a remote model: a busy process does not slow its pace.
            due += self.chunk_delay
            left = due - time.monotonic()
            if left > 0:
                time.sleep(left)
            on_chunk(piece)
        return reply

    def _reply(self, request: ReplyRequest) -> Reply:
        if request.message_count is None:
            count = "Your message count is unavailable right now."
        elif request.message_count == 1:
            count = "You have sent 1 message so far."
        else:
            count = f"You have sent {request.message_count} messages so far."
        if request.history:
            last = request.history[-1].message
            snippet = last if len(last) <= 60 else last[:57] + "..."
            seen = f'I remember {len(request.history)} earlier turn(s); your last message was "{snippet}".'
        else:
            seen = "This is the start of our conversation."
        text = request.text.strip()
        echo = text if len(text) <= 200 else text[:197] + "..."
        reply = f'Hi {request.user_id}! {count} {seen} You said: "{echo}" [offline reply]'
        return Reply(text=reply, model="offline", offline=True, metadata={"note": OFFLINE_NOTE})

    def ping(self) -> None:
        return None

    def close(self) -> None:
        return None
