"""Analytics counters on Upstash Redis over its HTTPS REST API (`upstash-redis`).

    counters = UpstashCounters.from_rest(url, token)

For hosts where only port 443 is open (Hugging Face Spaces may close Redis's TCP ports). Same keys and
scripts as `RedisCounters`, so both can share one database.
"""

from __future__ import annotations

import threading
from typing import Any

from daca_kit.adapters.redis import ADMIT, COUNT_KEY, INCREMENT_ONCE, MARK_KEY, MARK_TTL, RATE_LIMIT
from daca_kit.errors import CountersError


def explain_upstash_error(exc: Exception) -> str:
    text = str(exc).lower()
    if "unauthorized" in text or "401" in text or "wrongpass" in text:
        return "Upstash refused the token: check UPSTASH_REDIS_REST_TOKEN"
    if "name or service not known" in text or "resolve" in text or "getaddrinfo" in text:
        return "UPSTASH_REDIS_REST_URL's host did not resolve: copy the REST URL from the Upstash console"
    if "ssl" in text or "certificate" in text:
        return "The TLS handshake with Upstash failed: check UPSTASH_REDIS_REST_URL"
    return f"Upstash failed ({type(exc).__name__}): check UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN"


class UpstashCounters:
    """`Counters` on the Upstash REST API; one HTTPS request per command."""

    name = "upstash-rest"

    def __init__(self, client: Any, *, label: str = "upstash-rest") -> None:
        self.client = client
        self.label = label
        self.commands = 0
        self._lock = threading.Lock()

    @classmethod
    def from_rest(cls, url: str, token: str, *, timeout: float = 5.0) -> UpstashCounters:
        from urllib.parse import urlsplit

        import httpx
        from upstash_redis import Redis

        client = Redis(url=url, token=token, rest_retries=1, rest_retry_interval=0.5, allow_telemetry=False)
        # The SDK's HTTP client has no timeout; a hung request must not hang a chat turn.
        http = getattr(client, "_http", None)
        if http is not None and hasattr(http, "_client"):
            http._client.timeout = httpx.Timeout(timeout)
        return cls(client, label=f"upstash-rest://{urlsplit(url).hostname}")

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.commands += 1
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - upstash-redis raises plain and httpx exceptions
            raise CountersError(f"Could not {what}: {explain_upstash_error(exc)}") from exc

    def get(self, user_id: str) -> int:
        return int(self._call("read the message count", self.client.get, COUNT_KEY.format(user_id)) or 0)

    def set(self, user_id: str, value: int) -> None:
        self._call("set the message count", self.client.set, COUNT_KEY.format(user_id), int(value))

    def increment_once(self, user_id: str, event_id: str) -> int:
        keys = [COUNT_KEY.format(user_id), MARK_KEY.format(event_id)]
        return int(self._call("count the message", self.client.eval, INCREMENT_ONCE, keys, [str(MARK_TTL)]))

    def reset(self) -> int:
        cleared = 0
        cursor = 0
        while True:
            cursor, keys = self._call(
                "reset the counters", self.client.scan, cursor, match=COUNT_KEY.format("*"), count=1000
            )
            if keys:
                cleared += int(self._call("reset the counters", self.client.delete, *keys))
            if int(cursor) == 0:
                return cleared

    def all(self, limit: int = 1000) -> dict[str, int]:
        keys: list[str] = []
        cursor = 0
        while len(keys) < limit:
            cursor, page = self._call(
                "list the counters", self.client.scan, cursor, match=COUNT_KEY.format("*"), count=1000
            )
            keys.extend(page)
            if int(cursor) == 0:
                break
        keys = keys[:limit]
        if not keys:
            return {}
        values = self._call("list the counters", self.client.mget, *keys)
        prefix = len(COUNT_KEY.format(""))
        return {k[prefix:]: int(v or 0) for k, v in zip(keys, values, strict=True)}

    def hit(self, key: str, limit: int, window: int) -> tuple[bool, float]:
        allowed, retry_ms = self._call(
            "check the rate limit", self.client.eval, RATE_LIMIT, [f"rate:{key}"], [str(limit), str(window)]
        )
        return bool(int(allowed)), int(retry_ms) / 1000.0

    def admit(self, user_id: str, limit: int, window: int) -> tuple[bool, float, int]:
        keys = [f"rate:{user_id}:{window}", COUNT_KEY.format(user_id)]
        allowed, retry_ms, count = self._call(
            "check the rate limit", self.client.eval, ADMIT, keys, [str(limit), str(window)]
        )
        return bool(int(allowed)), int(retry_ms) / 1000.0, int(count)

    def ping(self) -> None:
        self._call("reach Upstash", self.client.ping)

    def close(self) -> None:
        close = getattr(self.client, "close", None)
        if close:
            close()
