"""A lean HTTP/1.1 client for the load generator: one keep-alive connection per simulated user.

    async with LeanClient("http://127.0.0.1:7860", timeout=60) as client:
        status, body = await client.post_json("/chat/", {"user_id": "u1", "text": "hi"})

It speaks http and https (`--url` may name a deployed app). The load generator shares the machine's cores
with the server it measures. A general client spends a few
milliseconds of CPU on each request (building, validating and parsing it through several layers); at a
few hundred requests a second that is most of a core, taken from the server, and the client itself
becomes what the benchmark measures. This one writes the request line and headers as one buffer and
reads the answer by its Content-Length (or its chunks), nothing more: JSON bodies, no proxies, no redirects.
A connection that fails is dropped and the next request opens a new one; failures are raised as
`LeanHTTPError` subclasses whose names say what failed, like the error names the bench reports.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from typing import Any
from urllib.parse import urlsplit


class LeanHTTPError(Exception):
    """A request that got no complete answer."""


class ConnectError(LeanHTTPError):
    """The connection could not be opened."""


class ReadError(LeanHTTPError):
    """The connection broke before the whole answer arrived."""


class ReadTimeout(LeanHTTPError):
    """No whole answer within the client's timeout."""


class ProtocolError(LeanHTTPError):
    """The answer was not HTTP/1.1 this client understands."""


class LeanClient:
    """Keep-alive connections to one `http://host:port` base URL, one per concurrent caller."""

    def __init__(self, base_url: str, *, timeout: float = 60.0, tls: ssl.SSLContext | None = None) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"the load generator needs an http:// or https:// URL with a host, not {base_url!r}"
            )
        self.host = parts.hostname
        secure = parts.scheme == "https"
        self.port = parts.port or (443 if secure else 80)
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self._tls = (tls or ssl.create_default_context()) if secure else None
        name = f"[{self.host}]" if ":" in self.host else self.host
        self._host_header = name if parts.port is None else f"{name}:{self.port}"
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._open: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> LeanClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for writer in list(self._open):
            writer.close()
        self._open.clear()
        self._idle.clear()

    async def post_json(self, path: str, payload: Any) -> tuple[int, bytes]:
        """POSTs `payload` as JSON; returns the status code and the body."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        head = (
            f"POST {self.prefix}{path} HTTP/1.1\r\nHost: {self._host_header}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode("latin-1")
        try:
            async with asyncio.timeout(self.timeout):
                return await self._exchange(head + body)
        except TimeoutError:
            raise ReadTimeout(f"no answer within {self.timeout} s") from None

    async def _exchange(self, request: bytes) -> tuple[int, bytes]:
        if self._idle:
            reader, writer = self._idle.pop()
        else:
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port, ssl=self._tls)
            except OSError as exc:  # ssl.SSLError included: a certificate this client does not trust
                raise ConnectError(str(exc)) from exc
            self._open.add(writer)
        try:
            writer.write(request)
            status, body, keep = await _read_response(reader)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            self._drop(writer)
            raise ReadError(str(exc) or type(exc).__name__) from exc
        except ValueError as exc:  # a length or chunk size that is not a number
            self._drop(writer)
            raise ProtocolError(f"unreadable answer: {exc}") from exc
        except BaseException:
            self._drop(writer)  # a half-read answer (timeout, protocol error) leaves the connection unusable
            raise
        if keep:
            self._idle.append((reader, writer))
        else:
            self._drop(writer)
        return status, body

    def _drop(self, writer: asyncio.StreamWriter) -> None:
        self._open.discard(writer)
        writer.close()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Reads one answer: (status, body, whether the connection may be reused)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise ProtocolError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    status = int(parts[1])
    length: int | None = None
    chunked = False
    keep = parts[0] == b"HTTP/1.1"
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            token = value.strip().lower()
            keep = token == b"keep-alive" or (keep and token != b"close")
    if chunked:
        return status, await _read_chunks(reader), keep
    if length is not None:
        return status, await reader.readexactly(length), keep
    if status in (204, 304) or 100 <= status < 200:
        return status, b"", keep
    return status, await reader.read(), False  # delimited by the close


async def _read_chunks(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, then the blank line
                pass
            return bytes(body)
        body += await reader.readexactly(size)
        await reader.readexactly(2)
