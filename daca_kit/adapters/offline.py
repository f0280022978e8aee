"""The offline reply model: deterministic, no network, clearly labelled.

    model = OfflineReplyModel()            # what runs when GEMINI_API_KEY is unset
    model = OfflineReplyModel(delay=0.5)   # emulates a remote model's latency (DACA_OFFLINE_DELAY)

Its replies show what the workflow fed it (the user's message count and recent history), so the flow
is visible without an account.
"""

from __future__ import annotations

import time

from daca_kit.core.models import Backend, Reply, ReplyRequest

OFFLINE_NOTE = "offline reply model: set GEMINI_API_KEY for Gemini replies"


class OfflineReplyModel:
    """`ReplyModel` without a network: echoes what the workflow fed it."""

    name = "offline"
    backend = Backend("offline", "offline", "offline model (embedded, no network)", embedded=True)

    def __init__(self, *, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls = 0

    def generate(self, request: ReplyRequest) -> Reply:
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
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
