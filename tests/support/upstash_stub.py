"""A local stand-in for Upstash's Redis REST API, executing each command on a real Redis.

    with UpstashRestStub("redis://127.0.0.1:6379/3", token="t") as stub:
        UpstashCounters.from_rest(stub.url, "t")

Speaks what the `upstash-redis` SDK sends: POST / with a JSON command array, `Authorization: Bearer`,
and `Upstash-Encoding: base64` answers (strings base64-encoded, except "OK").
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import redis


def _encode(value: Any) -> Any:
    if isinstance(value, bytes):
        return "OK" if value == b"OK" else base64.b64encode(value).decode()
    if isinstance(value, str):
        return "OK" if value == "OK" else base64.b64encode(value.encode()).decode()
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    if value is True:
        return "OK"
    return value


class UpstashRestStub:
    def __init__(self, redis_url: str, *, token: str) -> None:
        self.redis = redis.Redis.from_url(redis_url)
        self.token = token
        self.commands: list[list[Any]] = []
        self.requests = 0  # every request received, answered or not
        self.bad_gateway = 0  # answer the next this many requests with a proxy's HTML 502 page
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                return

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                stub.requests += 1
                if stub.bad_gateway > 0:
                    stub.bad_gateway -= 1
                    page = b"<html><body>502 Bad Gateway</body></html>"
                    self.send_response(502)
                    self.send_header("content-type", "text/html")
                    self.send_header("content-length", str(len(page)))
                    self.end_headers()
                    self.wfile.write(page)
                    return None
                if self.headers.get("authorization") != f"Bearer {stub.token}":
                    return self._send(401, {"error": "WRONGPASS invalid or missing auth token"})
                command = json.loads(body)
                stub.commands.append(command)
                try:
                    result = stub.redis.execute_command(*command)
                except redis.ResponseError as exc:
                    return self._send(400, {"error": str(exc)})
                encode = self.headers.get("upstash-encoding") == "base64"
                return self._send(200, {"result": _encode(result) if encode else _plain(result)})

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> UpstashRestStub:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.redis.close()


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
