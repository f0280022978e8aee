"""The UI's requests, relayed from any worker process to the one that serves the UI (`WEB_CONCURRENCY` > 1).

    api.mount("/", UiRelay(port=ui_port, token=token))          # in every worker but the UI's
    app = RelayedClient(app, token=token)                        # around the UI worker's app

Gradio keeps its queue in the process: a session's `queue/join` POST and its event stream must reach the
same process, and the kernel spreads connections over the workers. So one worker serves the UI (and the
REST API, like every worker); the others serve the REST API themselves and pass every other path on to it
over loopback, streaming the answer as it comes (server-sent events included). The UI worker must still
see the visitor, not loopback, for the login throttle, the per-visitor limits and the admin rule: the
relay adds the visitor's address with a token made at start (never logged), and `RelayedClient` puts the
address back and refuses a relay header without the right token.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import Any

import httpx
from starlette.types import ASGIApp, Receive, Scope, Send

from daca_kit.web.asgi import read_body

log = logging.getLogger(__name__)

RELAY_HEADER = b"x-daca-relay"
PEER_HEADER = b"x-daca-peer"
# Hop-by-hop headers (RFC 9110 7.6.1) are the connection's own, not the message's.
HOP = {b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding", b"upgrade"}


class UiRelay:
    """ASGI app: every request it gets goes to the UI worker on 127.0.0.1:`port`, the answer streamed back."""

    def __init__(self, *, port: int, token: str) -> None:
        self.port = port
        self.token = token.encode()
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:  # made in the serving event loop
            self._client = httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{self.port}",
                timeout=httpx.Timeout(None, connect=5.0),  # event streams stay open as long as the page
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=50),
                trust_env=False,
            )
        return self._client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # Gradio's UI speaks HTTP and server-sent events only
            await receive()
            await send({"type": "websocket.close", "code": 1011})
            return
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        if body is None:
            return
        client = scope.get("client") or ("", 0)
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in HOP | {RELAY_HEADER, PEER_HEADER}]
        headers += [(RELAY_HEADER, self.token), (PEER_HEADER, f"{client[0]}:{client[1]}".encode())]
        path = scope.get("raw_path") or scope["path"].encode()
        target = path.decode("latin-1") + (
            f"?{scope['query_string'].decode('latin-1')}" if scope["query_string"] else ""
        )
        request = self._http().build_request(scope["method"], target, headers=headers, content=bytes(body))
        try:
            answer = await self._http().send(request, stream=True)
        except httpx.HTTPError as exc:
            log.warning("the UI worker did not answer a relayed request: %s", exc)
            await _plain(send, 503, b"The UI is starting or restarting: reload the page in a moment.")
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": answer.status_code,
                    "headers": [(k, v) for k, v in answer.headers.raw if k.lower() not in HOP],
                }
            )
            pump = asyncio.ensure_future(_pump(answer, send))
            gone = asyncio.ensure_future(_disconnected(receive))
            done, pending = await asyncio.wait({pump, gone}, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            if pump in done:
                pump.result()
        except httpx.HTTPError as exc:  # the UI worker went away mid-answer: end this answer too
            log.info("a relayed answer was cut: %s", exc)
        finally:
            await answer.aclose()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


async def _pump(answer: httpx.Response, send: Send) -> None:
    async for chunk in answer.aiter_raw():
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _plain(send: Send, status: int, text: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(text)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": text})


class RelayedClient:
    """ASGI middleware of the UI worker: a request relayed by another worker gets its visitor back as
    `client`; a relay header without the right token is refused (403)."""

    def __init__(self, app: ASGIApp, *, token: str) -> None:
        self.app = app
        self.token = token.encode()

    def __getattr__(self, name: str) -> Any:  # the wrapped app's attributes (e.g. `state`, `router`)
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope["headers"])
            token = given.get(RELAY_HEADER)
            if token is not None:
                if not hmac.compare_digest(token, self.token):
                    await _plain(send, 403, b"Forbidden.")
                    return
                host, _, port = given.get(PEER_HEADER, b"").decode("latin-1").rpartition(":")
                scope = {
                    **scope,
                    "client": (host, int(port)) if host and port.isdigit() else None,
                    "headers": [(k, v) for k, v in scope["headers"] if k not in (RELAY_HEADER, PEER_HEADER)],
                }
        await self.app(scope, receive, send)
