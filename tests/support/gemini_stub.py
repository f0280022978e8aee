"""A local HTTP server that speaks enough of the Gemini REST API for `google-genai`.

It serves `POST /{api_version}/models/{model}:generateContent`, its streaming twin
`POST .../models/{model}:streamGenerateContent?alt=sse` (what `generate_content_stream` sends: the reply
as Server-Sent Events, one `data: {GenerateContentResponse}` per piece, word by word, `chunk_delay`
seconds apart) and `GET /{api_version}/models/{model}` on 127.0.0.1 (any version segment: the SDK uses `v1` by default since 3.0, `v1beta` before), checks the
`x-goog-api-key` header, and answers unknown models with Google's 404 NOT_FOUND error JSON.

A wrong key gets what the real service sends: 400 INVALID_ARGUMENT with reason API_KEY_INVALID
(pass `wrong_key_status=401` for a 401 UNAUTHENTICATED instead); a missing key gets 403.

Scripting: `stub.plan(...)` queues what the next requests get, one step per request, in order; when the
queue is empty the stub answers normally. A step is an HTTP status (`429`, `500`, `503`, `200`...),
`"timeout"` (holds the request for `hold_seconds`, longer than a short client timeout), `"empty"`
(a candidate with no parts), `"blocked"` (promptFeedback.blockReason SAFETY, no candidates),
`"break"` (a stream that sends its first `break_after` pieces, then closes the connection), `"stall"`
(one that sends them, then holds the connection silent for `hold_seconds`), or a
dict (sent as the JSON body with status 200).

Every request is recorded in `stub.requests` (method, path, query, headers with lower-case names, JSON
body), and each streamed piece in `stub.sent` (text, `time.monotonic()` when it was written).
A normal reply echoes the last user message: "stub reply to: <text>".

Usage:
    with GeminiStub(api_key="k", models={"gemini-3.8-flash"}) as stub:
        model = GeminiReplyModel("k", "gemini-3.8-flash", base_url=stub.base_url)
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Step = int | str | dict[str, Any]

_PATH = re.compile(r"^/(?P<version>v[0-9a-z]+)/models/(?P<model>[^/:?]+)(?P<method>:[A-Za-z]+)?$")

# Google's canonical status names for the HTTP codes the stub can send.
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


@dataclass
class RecordedRequest:
    """One request the stub received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any = None
    query: str = ""

    def texts(self) -> list[str]:
        """Every text part of a generateContent body, system instruction first, then contents in order."""
        if not isinstance(self.body, dict):
            return []
        contents: list[dict[str, Any]] = []
        system = self.body.get("systemInstruction") or self.body.get("system_instruction")
        if system:
            contents.append(system)
        contents.extend(self.body.get("contents") or [])
        return [part["text"] for content in contents for part in content.get("parts") or [] if "text" in part]

    def last_user_text(self) -> str:
        if not isinstance(self.body, dict):
            return ""
        for content in reversed(self.body.get("contents") or []):
            if content.get("role", "user") == "user":
                return "".join(part.get("text", "") for part in content.get("parts") or [])
        return ""


@dataclass
class _State:
    api_key: str
    models: set[str]
    wrong_key_status: int
    hold_seconds: float
    chunk_delay: float = 0.0
    break_after: int = 2
    sent: list[tuple[str, float]] = field(default_factory=list)
    planned: deque[Step] = field(default_factory=deque)
    requests: list[RecordedRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)


def google_error(code: int, message: str, *, reason: str | None = None) -> dict[str, Any]:
    """Google's error JSON (`{"error": {"code", "message", "status", "details"?}}`)."""
    error: dict[str, Any] = {"code": code, "message": message, "status": _STATUS_NAMES.get(code, "UNKNOWN")}
    if reason:
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
        ]
    return {"error": error}


def text_response(text: str, model: str, *, finish_reason: str = "STOP") -> dict[str, Any]:
    """A GenerateContentResponse with one candidate holding `text`."""
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": text}]},
                "finishReason": finish_reason,
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 12,
            "candidatesTokenCount": max(1, len(text.split())),
            "totalTokenCount": 12 + max(1, len(text.split())),
        },
        "modelVersion": model,
        "responseId": "stub-response",
    }


def model_resource(model: str) -> dict[str, Any]:
    """A Model resource as `GET /v1/models/{model}` returns it."""
    return {
        "name": f"models/{model}",
        "version": "001",
        "displayName": model,
        "description": "Local stub of a Gemini model.",
        "inputTokenLimit": 1048576,
        "outputTokenLimit": 65536,
        "supportedGenerationMethods": ["generateContent", "countTokens"],
    }


class _Handler(BaseHTTPRequestHandler):
    server_version = "GeminiStub/1.0"
    protocol_version = "HTTP/1.1"
    state: _State  # set on the subclass built per stub

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        pass  # keep test output quiet

    def do_GET(self) -> None:
        self._handle(body=None)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            self._send(400, google_error(400, "Invalid JSON payload received."))
            return
        self._handle(body=body)

    def _handle(self, body: Any) -> None:
        state = self.state
        path, _, query = self.path.partition("?")
        recorded = RecordedRequest(
            method=self.command,
            path=path,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            query=query,
        )
        with state.lock:
            state.requests.append(recorded)

        match = _PATH.match(path)
        method = match.group("method") if match else None
        allowed = (("GET", None), ("POST", ":generateContent"), ("POST", ":streamGenerateContent"))
        if not match or (self.command, method) not in allowed:
            self._send(404, google_error(404, f"Method not found: {self.command} {path}."))
            return

        key = self.headers.get("x-goog-api-key")
        if not key:
            self._send(
                403,
                google_error(
                    403,
                    "Method doesn't allow unregistered callers (callers without established identity). "
                    "Please use API Key or other form of API consumer identity to call this API.",
                ),
            )
            return
        if key != state.api_key:
            self._send(
                state.wrong_key_status,
                google_error(
                    state.wrong_key_status,
                    "API key not valid. Please pass a valid API key.",
                    reason="API_KEY_INVALID",
                ),
            )
            return

        model = match.group("model")
        if model not in state.models:
            self._send(
                404,
                google_error(
                    404,
                    f"models/{model} is not found for API version {match.group('version')}, or is not "
                    "supported for generateContent. Call ListModels to see the list of available models "
                    "and their supported methods.",
                ),
            )
            return

        with state.lock:
            step: Step = state.planned.popleft() if state.planned else 200

        if step == "timeout":
            # Hold the request past the client's timeout; the wait ends early when the stub stops.
            state.stopping.wait(state.hold_seconds)
            step = 200
        if method == ":streamGenerateContent" and step in (200, "break", "stall"):
            self._stream(f"stub reply to: {recorded.last_user_text()}", model, cut=step)
        elif isinstance(step, dict):
            self._send(200, step)
        elif step == "empty":
            self._send(
                200,
                {
                    "candidates": [{"content": {"role": "model"}, "finishReason": "STOP", "index": 0}],
                    "usageMetadata": {"promptTokenCount": 12, "totalTokenCount": 12},
                    "modelVersion": model,
                },
            )
        elif step == "blocked":
            self._send(
                200,
                {
                    "promptFeedback": {"blockReason": "SAFETY"},
                    "usageMetadata": {"promptTokenCount": 12, "totalTokenCount": 12},
                    "modelVersion": model,
                },
            )
        elif step == 200:
            if method == ":generateContent":
                self._send(200, text_response(f"stub reply to: {recorded.last_user_text()}", model))
            else:
                self._send(200, model_resource(model))
        elif isinstance(step, int):
            try:
                message = HTTPStatus(step).phrase
            except ValueError:
                message = "Error"
            if step == 429:
                message = "Resource has been exhausted (e.g. check quota)."
            self._send(step, google_error(step, message))
        else:
            raise ValueError(f"unknown planned step {step!r}")

    def _stream(self, text: str, model: str, *, cut: Step) -> None:
        """The reply as Server-Sent Events over chunked transfer encoding, one word per event."""
        state = self.state
        pieces = re.findall(r"\S+\s*", text)
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for n, piece in enumerate(pieces):
                if cut == "stall" and n == state.break_after:
                    state.stopping.wait(state.hold_seconds)  # a route that went silent mid-reply
                if cut == "break" and n == state.break_after:
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)  # mid-reply, without the chunked body's end
                    return
                if n and state.chunk_delay:
                    state.stopping.wait(state.chunk_delay)
                last = n == len(pieces) - 1
                event = text_response(piece, model, finish_reason="STOP" if last else "")
                if not last:
                    del event["candidates"][0]["finishReason"]
                data = f"data: {json.dumps(event)}\r\n\r\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
                with state.lock:
                    state.sent.append((piece, time.monotonic()))
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its timeout), as a real client would


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that times out and closes its socket is expected here, not an error to print.
        pass


class GeminiStub:
    """A scriptable local Gemini REST server; see the module docstring.

    Usage:
        with GeminiStub(api_key="k", models={"gemini-3.8-flash"}) as stub:
            stub.plan(429, 200)
            ...  # point the client at stub.base_url
            assert len(stub.requests) == 2
    """

    def __init__(
        self,
        api_key: str = "test-key",
        models: Iterable[str] = ("gemini-3.8-flash",),
        *,
        wrong_key_status: int = 400,
        hold_seconds: float = 3.0,
        chunk_delay: float = 0.0,
        break_after: int = 2,
    ) -> None:
        self._state = _State(
            api_key=api_key,
            models=set(models),
            wrong_key_status=wrong_key_status,
            hold_seconds=hold_seconds,
            chunk_delay=chunk_delay,
            break_after=break_after,
        )
        handler = type("GeminiStubHandler", (_Handler,), {"state": self._state})
        self._server: _Server | None = _Server(("127.0.0.1", 0), handler)
        self._thread: threading.Thread | None = None
        self._base_url = f"http://127.0.0.1:{self._server.server_port}"

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>`, for `GeminiReplyModel(base_url=...)` or GEMINI_BASE_URL."""
        return self._base_url

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._state.lock:
            return list(self._state.requests)

    @property
    def sent(self) -> list[tuple[str, float]]:
        """Streamed pieces so far: (text, time.monotonic() when written)."""
        with self._state.lock:
            return list(self._state.sent)

    def plan(self, *steps: Step) -> None:
        """Queues what the next requests get (one step per request, after the key and model checks)."""
        with self._state.lock:
            self._state.planned.extend(steps)

    def start(self) -> GeminiStub:
        if self._server is None:
            raise RuntimeError("the stub is closed")
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self._thread.start()
        return self

    def close(self) -> None:
        self._state.stopping.set()  # releases requests held by a "timeout" step
        if self._server is not None:
            if self._thread is not None:
                self._server.shutdown()
                self._thread.join(timeout=5)
            self._server.server_close()
            self._server = None
        self._thread = None

    def __enter__(self) -> GeminiStub:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()
