"""The load generator's lean HTTP client against a loopback server that answers as told: keep-alive reuse,
chunked and closing answers, and a refused, reset, blackholed or non-HTTP peer reported by name, in time."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import struct
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from daca_kit.ops.bench.http import ConnectError, LeanClient, ProtocolError, ReadError, ReadTimeout

Answer = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool]]  # returns whether to keep serving


class Peer:
    """A loopback server: reads each request (head and Content-Length body) and lets `answer` reply."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.connections = 0
        self.requests: list[bytes] = []

    async def __aenter__(self) -> Peer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                if not await self.answer(request, writer):
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()


def ok(body: bytes, *extra: str) -> bytes:
    headers = "".join(f"{h}\r\n" for h in extra)
    return f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{headers}\r\n".encode() + body


async def echo(request: bytes, writer: asyncio.StreamWriter) -> bool:
    writer.write(ok(request.split(b"\r\n\r\n", 1)[1]))
    return True


def test_each_request_reaches_the_server_whole_and_a_connection_is_kept_alive() -> None:
    async def run() -> None:
        async with Peer(echo) as peer, LeanClient(peer.url + "/") as client:
            for n in range(3):
                status, body = await client.post_json("/chat/", {"user_id": "u1", "text": f"hé {n}"})
                assert status == 200
                assert json.loads(body) == {"user_id": "u1", "text": f"hé {n}"}
            assert peer.connections == 1
            head = peer.requests[0].split(b"\r\n\r\n")[0].split(b"\r\n")
            assert head[0] == b"POST /chat/ HTTP/1.1"
            assert b"Content-Type: application/json" in head

    asyncio.run(run())


def test_concurrent_callers_get_a_connection_each_and_their_own_answers() -> None:
    async def run() -> None:
        async def slow_echo(request: bytes, writer: asyncio.StreamWriter) -> bool:
            await asyncio.sleep(0.05)
            return await echo(request, writer)

        async with Peer(slow_echo) as peer, LeanClient(peer.url) as client:
            answers = await asyncio.gather(*(client.post_json("/chat/", {"n": n}) for n in range(5)))
            assert [json.loads(body)["n"] for _status, body in answers] == list(range(5))
            assert peer.connections == 5
            await client.post_json("/chat/", {"n": 5})
            assert peer.connections == 5  # an idle one was reused

    asyncio.run(run())


def test_chunked_and_closing_answers_are_read_whole() -> None:
    async def run() -> None:
        async def chunked(_request: bytes, writer: asyncio.StreamWriter) -> bool:
            writer.write(
                b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=1\r\n world\r\n0\r\n\r\n"
            )
            return True

        async def closing(_request: bytes, writer: asyncio.StreamWriter) -> bool:
            writer.write(ok(b"bye", "Connection: close"))
            return False

        async with Peer(chunked) as peer, LeanClient(peer.url) as client:
            assert await client.post_json("/x", {}) == (202, b"hello world")
            assert await client.post_json("/x", {}) == (202, b"hello world")
            assert peer.connections == 1
        async with Peer(closing) as peer, LeanClient(peer.url) as client:
            assert await client.post_json("/x", {}) == (200, b"bye")
            assert await client.post_json("/x", {}) == (200, b"bye")
            assert peer.connections == 2  # the closed connection was not reused

    asyncio.run(run())


def test_a_refused_connection_is_a_connect_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nobody listens on it once closed

    async def run() -> None:
        async with LeanClient(f"http://127.0.0.1:{port}", timeout=5) as client:
            with pytest.raises(ConnectError):
                await client.post_json("/chat/", {})

    asyncio.run(run())


def test_a_reset_connection_is_a_read_error_and_the_next_request_opens_a_new_one() -> None:
    async def run() -> None:
        resets = 0

        async def reset_once(request: bytes, writer: asyncio.StreamWriter) -> bool:
            nonlocal resets
            if resets == 0:
                resets += 1
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
                writer.transport.abort()
                return False
            return await echo(request, writer)

        async with Peer(reset_once) as peer, LeanClient(peer.url, timeout=5) as client:
            with pytest.raises(ReadError):
                await client.post_json("/chat/", {"n": 1})
            assert await client.post_json("/chat/", {"n": 2}) == (200, b'{"n":2}')
            assert peer.connections == 2

    asyncio.run(run())


def test_a_blackholed_server_is_a_read_timeout_within_the_timeout() -> None:
    async def run() -> None:
        async def never(_request: bytes, _writer: asyncio.StreamWriter) -> bool:
            await asyncio.sleep(30)
            return False

        async with Peer(never) as peer, LeanClient(peer.url, timeout=0.3) as client:
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(ReadTimeout):
                await client.post_json("/chat/", {})
            assert loop.time() - started < 5

    asyncio.run(run())


@pytest.mark.parametrize(
    "answer",
    [b"SSH-2.0-OpenSSH\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: lots\r\n\r\n{}"],
    ids=["not-http", "length-not-a-number"],
)
def test_an_answer_that_is_not_readable_http_is_a_protocol_error(answer: bytes) -> None:
    async def garbage(_request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer)
        return True

    async def run() -> None:
        async with Peer(garbage) as peer, LeanClient(peer.url) as client:
            with pytest.raises(ProtocolError):
                await client.post_json("/chat/", {})

    asyncio.run(run())


def test_https_is_spoken_and_an_untrusted_certificate_is_refused(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        capture_output=True, check=False,
    )  # fmt: skip
    if made.returncode != 0:
        pytest.skip(f"openssl could not make a certificate: {made.stderr.decode()[-200:]}")
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)

    async def run() -> None:
        peer = Peer(echo)
        peer.server = await asyncio.start_server(peer._serve, "127.0.0.1", 0, ssl=server_tls)
        url = f"https://127.0.0.1:{peer.server.sockets[0].getsockname()[1]}"
        try:
            trusting = ssl.create_default_context(cafile=str(cert))
            async with LeanClient(url, tls=trusting) as client:
                assert await client.post_json("/chat/", {"n": 1}) == (200, b'{"n":1}')
            async with LeanClient(url, timeout=5) as client:  # the system's trust store: not this certificate
                with pytest.raises(ConnectError):
                    await client.post_json("/chat/", {"n": 2})
        finally:
            peer.server.close()

    asyncio.run(run())


def test_only_http_and_https_urls_are_taken() -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        LeanClient("ftp://example.org")
    assert LeanClient("https://example.org")._host_header == "example.org"
    assert LeanClient("http://127.0.0.1:7860/")._host_header == "127.0.0.1:7860"
