"""A local stand-in for the Dapr sidecar's HTTP API: the calls daca_kit's Dapr adapters make.

    with DaprSidecarStub() as sidecar:             # 127.0.0.1, a free port, a background thread
        counters = DaprCounters(DaprSidecar(sidecar.url))
        ...
        sidecar.published                          # [(pubsub, topic, content_type, body), ...]

It follows the documented contract (https://docs.dapr.io/reference/api/state_api/,
https://docs.dapr.io/reference/api/pubsub_api/, https://docs.dapr.io/reference/api/health_api/) and,
where the contract leaves a choice to the store, what the Redis state store does
(dapr/components-contrib state/redis/redis.go), since Redis is the store the kit uses:

- GET    /v1.0/healthz/outbound, /v1.0/healthz       204 (500 when `healthy` is False)
- GET    /v1.0/state/{store}/{key}                   200 value + ETag header, 204 when absent
- POST   /v1.0/state/{store}                         204; a stale ETag: 409 (ERR_STATE_SAVE, "possible
                                                     etag mismatch"); first-write with no ETag on a key that
                                                     exists: 500 ("failed to set key", as Redis answers);
                                                     an ETag under last-write concurrency is ignored
- DELETE /v1.0/state/{store}/{key}                   204; a stale If-Match: 409
- POST   /v1.0/state/{store}/bulk                    200 [{key, data, etag}]
- POST   /v1.0/state/{store}/transaction             204, all or nothing (a stale ETag: 409)
- POST   /v1.0/publish/{pubsub}/{topic}              204, recorded in `published`
- unknown store or pub/sub: 400 ERR_STATE_STORE_NOT_FOUND / 404 ERR_PUBSUB_NOT_FOUND, as daprd answers
- with `token` set, requests other than health checks without `dapr-api-token: token` get 401

With `subscriber` set to the app's base URL, each published event is then pushed to POST
`{subscriber}/events/{topic}` on a background thread, as daprd does for components/subscription.yaml;
the app's answers are recorded in `deliveries` as (topic, HTTP status, body).

ETags are version numbers, as on Redis. `read_delay` holds every state read for that many seconds,
which widens the read-modify-write window so concurrency tests really collide; `conflicts` counts
the writes refused for a stale ETag.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


class DaprSidecarStub:
    def __init__(
        self,
        *,
        stores: tuple[str, ...] = ("statestore",),
        pubsubs: tuple[str, ...] = ("pubsub",),
        token: str | None = None,
    ) -> None:
        self.stores = set(stores)
        self.pubsubs = set(pubsubs)
        self.token = token
        self.healthy = True
        self.read_delay = 0.0
        self.publish_error: tuple[int, str, str] | None = None  # (status, errorCode, message)
        self.state: dict[str, dict[str, tuple[Any, int]]] = {s: {} for s in stores}
        self.first_write: set[tuple[str, str]] = set()
        self.published: list[tuple[str, str, str, Any]] = []
        self.requests: list[tuple[str, str]] = []
        self.conflicts = 0
        self.subscriber: str | None = None
        self.deliveries: list[tuple[str, int, Any]] = []
        self.lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as separate writes

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet test output
                return

            def do_GET(self) -> None:
                stub._dispatch(self, "GET")

            def do_POST(self) -> None:
                stub._dispatch(self, "POST")

            def do_PUT(self) -> None:
                stub._dispatch(self, "POST")

            def do_DELETE(self) -> None:
                stub._dispatch(self, "DELETE")

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # the default 5 resets connections when tests hammer it
            daemon_threads = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="dapr-sidecar-stub",
            daemon=True,
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> DaprSidecarStub:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def value(self, key: str, store: str = "statestore") -> Any:
        """The stored value of `key` (None when absent), for assertions."""
        with self.lock:
            entry = self.state[store].get(key)
        return None if entry is None else entry[0]

    # -- request handling --------------------------------------------------------------------------
    def _dispatch(self, h: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(h.path)
        path = [unquote(p) for p in parts.path.split("/") if p]
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        length = int(h.headers.get("content-length") or 0)
        body = h.rfile.read(length) if length else b""
        with self.lock:
            self.requests.append((method, parts.path))
        health = parts.path.startswith("/v1.0/healthz")  # daprd answers health checks without the token
        if self.token is not None and not health and h.headers.get("dapr-api-token") != self.token:
            return self._send(h, 401, {"errorCode": "ERR_UNAUTHORIZED", "message": "invalid api token"})
        try:
            status, payload, headers = self._route(method, path, query, body, h.headers)
        except ValueError as exc:
            status, payload, headers = 400, {"errorCode": "ERR_MALFORMED_REQUEST", "message": str(exc)}, {}
        self._send(h, status, payload, headers)

    def _send(
        self, h: BaseHTTPRequestHandler, status: int, payload: Any, headers: dict[str, str] | None = None
    ) -> None:
        h.send_response(status)
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        if status in (204, 304):
            h.end_headers()
            return
        data = b"" if payload is None else json.dumps(payload).encode()
        h.send_header("content-type", "application/json")
        h.send_header("content-length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _route(
        self, method: str, path: list[str], query: dict[str, str], body: bytes, headers: Any
    ) -> tuple[int, Any, dict[str, str]]:
        if path[:1] != ["v1.0"]:
            return 404, {"errorCode": "ERR_NOT_FOUND", "message": "not found"}, {}
        rest = path[1:]
        if rest in (["healthz"], ["healthz", "outbound"]) and method == "GET":
            return (
                (204, None, {})
                if self.healthy
                else (500, {"errorCode": "ERR_HEALTH_NOT_READY", "message": "dapr is not ready"}, {})
            )
        if rest[:1] == ["publish"] and len(rest) == 3 and method == "POST":
            return self._publish(rest[1], rest[2], body, headers.get("content-type", ""))
        if rest[:1] == ["state"] and len(rest) >= 2:
            store = rest[1]
            if store not in self.stores:
                return (
                    400,
                    {
                        "errorCode": "ERR_STATE_STORE_NOT_FOUND",
                        "message": f"state store {store} is not found",
                    },
                    {},
                )
            if len(rest) == 2 and method == "POST":
                return self._save(store, json.loads(body or b"[]"))
            if len(rest) == 3 and rest[2] == "bulk" and method == "POST":
                return self._bulk(store, json.loads(body or b"{}"))
            if len(rest) == 3 and rest[2] == "transaction" and method == "POST":
                return self._transaction(store, json.loads(body or b"{}"))
            if len(rest) == 3 and method == "GET":
                return self._get(store, rest[2])
            if len(rest) == 3 and method == "DELETE":
                return self._delete(store, rest[2], headers.get("if-match"))
        return 404, {"errorCode": "ERR_NOT_FOUND", "message": f"{method} /{'/'.join(path)} is not served"}, {}

    # -- state -------------------------------------------------------------------------------------
    def _get(self, store: str, key: str) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            entry = self.state[store].get(key)
        if self.read_delay:
            time.sleep(self.read_delay)
        if entry is None:
            return 204, None, {}
        return 200, entry[0], {"ETag": str(entry[1])}

    def _check(self, store: str, item: dict[str, Any]) -> tuple[int, dict[str, str]] | None:
        """Why a write of `item` is refused, or None. Caller holds the lock."""
        key = item["key"]
        current = self.state[store].get(key)
        options = item.get("options") or {}
        etag = item.get("etag")
        if options.get("concurrency") == "last-write":
            return None
        if etag not in (None, ""):
            if current is None or str(current[1]) != str(etag):
                self.conflicts += 1
                return 409, {
                    "errorCode": "ERR_STATE_SAVE",
                    "message": f"failed saving state in state store {store}: possible etag mismatch. error from "
                    f"state store: failed to set key {key}",
                }
            return None
        if (
            options.get("concurrency") == "first-write"
            and current is not None
            and (store, key) in self.first_write
        ):
            # Redis: no ETag plus first-write on a key written with first-write is refused, not as an ETag error.
            self.conflicts += 1
            return 500, {
                "errorCode": "ERR_STATE_SAVE",
                "message": f"failed saving state in state store {store}: failed to set key {key}",
            }
        return None

    def _apply(self, store: str, item: dict[str, Any]) -> None:
        key = item["key"]
        current = self.state[store].get(key)
        self.state[store][key] = (item.get("value"), (current[1] if current else 0) + 1)
        if (item.get("options") or {}).get("concurrency") == "first-write":
            self.first_write.add((store, key))

    def _save(self, store: str, items: list[dict[str, Any]]) -> tuple[int, Any, dict[str, str]]:
        if not isinstance(items, list) or not all(isinstance(i, dict) and "key" in i for i in items):
            raise ValueError("the body must be a JSON array of state objects with a key")
        with self.lock:
            for item in items:  # a bulk save is not a transaction: each item on its own
                refused = self._check(store, item)
                if refused is not None:
                    return refused[0], refused[1], {}
                self._apply(store, item)
        return 204, None, {}

    def _delete(self, store: str, key: str, if_match: str | None) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            current = self.state[store].get(key)
            if if_match and (current is None or str(current[1]) != if_match):
                self.conflicts += 1
                return (
                    409,
                    {
                        "errorCode": "ERR_STATE_DELETE",
                        "message": f"failed deleting state with key {key}: possible etag mismatch",
                    },
                    {},
                )
            self.state[store].pop(key, None)
            self.first_write.discard((store, key))
        return 204, None, {}

    def _bulk(self, store: str, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        out = []
        with self.lock:
            for key in body.get("keys") or []:
                entry = self.state[store].get(key)
                out.append(
                    {"key": key} if entry is None else {"key": key, "data": entry[0], "etag": str(entry[1])}
                )
        return 200, out, {}

    def _transaction(self, store: str, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        operations = body.get("operations") or []
        with self.lock:
            for op in operations:
                request = op.get("request") or {}
                if op.get("operation") == "upsert":
                    refused = self._check(store, request)
                    if refused is not None:
                        return refused[0], refused[1], {}
                elif op.get("operation") == "delete":
                    current = self.state[store].get(request.get("key"))
                    etag = request.get("etag")
                    if etag and (current is None or str(current[1]) != str(etag)):
                        self.conflicts += 1
                        return (
                            409,
                            {"errorCode": "ERR_STATE_TRANSACTION", "message": "possible etag mismatch"},
                            {},
                        )
                else:
                    raise ValueError(f"unknown operation {op.get('operation')!r}")
            for op in operations:
                request = op["request"]
                if op["operation"] == "upsert":
                    self._apply(store, request)
                else:
                    self.state[store].pop(request["key"], None)
        return 204, None, {}

    # -- pub/sub -----------------------------------------------------------------------------------
    def _publish(
        self, pubsub: str, topic: str, body: bytes, content_type: str
    ) -> tuple[int, Any, dict[str, str]]:
        if pubsub not in self.pubsubs:
            return 404, {"errorCode": "ERR_PUBSUB_NOT_FOUND", "message": f"pubsub {pubsub} not found"}, {}
        if self.publish_error is not None:
            status, code, message = self.publish_error
            return status, {"errorCode": code, "message": message}, {}
        try:
            parsed: Any = json.loads(body) if body else None
        except ValueError:
            parsed = body.decode(errors="replace")
        with self.lock:
            self.published.append((pubsub, topic, content_type, parsed))
        if self.subscriber is not None:
            threading.Thread(target=self._push, args=(self.subscriber, topic, body), daemon=True).start()
        return 204, None, {}

    def _push(self, subscriber: str, topic: str, body: bytes) -> None:
        import httpx

        try:
            response = httpx.post(
                f"{subscriber}/events/{topic}",
                content=body,
                headers={"content-type": "application/cloudevents+json"},
                trust_env=False,
                timeout=10,
            )
            outcome: tuple[int, Any] = (response.status_code, response.json())
        except (httpx.HTTPError, ValueError) as exc:
            outcome = (0, repr(exc))
        with self.lock:
            self.deliveries.append((topic, *outcome))
