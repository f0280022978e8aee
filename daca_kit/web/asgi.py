"""Two ASGI pieces the app's own middleware and routes share: reading a whole request body, and handing it
on to the next app as if it had not been read.

    body = await read_body(receive)            # None: the client left first
    await app(scope, replaying(body, receive), send)
"""

from __future__ import annotations

from starlette.types import Message, Receive


async def read_body(receive: Receive) -> bytes | None:
    """The request's whole body; None when the client disconnected before sending it."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if not message.get("more_body"):
            return bytes(body)


def replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives `body` first, then whatever `receive` gives (a disconnect)."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
