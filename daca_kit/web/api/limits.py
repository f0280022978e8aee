"""A request body limit on every path, REST and the Gradio UI's alike: 413 before a large body is kept in
memory.

The REST API's bodies are small (a chat message is at most 4,000 characters); the UI's calls carry the
Chat tab's browser state too, so paths outside the REST API get a larger, still bounded, limit. A body is
read up to its limit before the route sees it (its Content-Length, when sent, is refused at once), so a
body sent in chunks without a length is cut off as soon as it passes the limit.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from daca_kit.web.asgi import replaying

MAX_BODY = 64 * 1024
MAX_UI_BODY = 1024 * 1024
REST_PATHS = ("/chat", "/analytics", "/reviews", "/events", "/users", "/conversations")


class BodyLimit:
    """ASGI middleware: bodies over `limit` bytes on `paths` (over `other_limit` elsewhere) get 413."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int = MAX_BODY,
        paths: tuple[str, ...] = REST_PATHS,
        other_limit: int = MAX_UI_BODY,
    ) -> None:
        self.app, self.limit, self.paths, self.other_limit = app, limit, paths, other_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit if scope["path"].startswith(self.paths) else self.other_limit
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await too_large(send, limit)
            return
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client left: let the route see it
            chunks.append(message.get("body", b""))
            received += len(chunks[-1])
            if received > limit:
                await too_large(send, limit)
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, replaying(b"".join(chunks), receive), send)


async def too_large(send: Send, limit: int) -> None:
    body: Any = json.dumps({"detail": f"The request body is over {limit} bytes."}).encode()
    await send(
        {"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})
