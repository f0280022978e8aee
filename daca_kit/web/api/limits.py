"""A request body limit that refuses large bodies with 413 before they are read into memory."""

from __future__ import annotations

import json
from typing import Any

from fastapi import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

MAX_BODY = 64 * 1024


class BodyLimit:
    """ASGI middleware: bodies over `limit` bytes on `paths` get 413."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int = MAX_BODY,
        paths: tuple[str, ...] = ("/chat", "/analytics", "/reviews", "/events"),
    ) -> None:
        self.app, self.limit, self.paths = app, limit, paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.paths):
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await too_large(send, self.limit)
            return
        received = 0

        async def limited() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise HTTPException(
                        status_code=413, detail=f"The request body is over {self.limit} bytes."
                    )
            return message

        await self.app(scope, limited, send)


async def too_large(send: Send, limit: int) -> None:
    body = json.dumps({"detail": f"The request body is over {limit} bytes."}).encode()
    await send(
        {"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})
