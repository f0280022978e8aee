"""Analytics counters and the shared rate limit on Redis (redis-py; `redis://`, or `rediss://` for Upstash).

    counters = RedisCounters.from_url("rediss://default:TOKEN@HOST:6379")

Keys: `message_count:{user_id}` (the tutorial's), `message_counted:{event_id}` (idempotency marks, kept
for a week), `rate:{user_id}:{window}` (rate limit). One command per call: the idempotent increment
is a Lua script, so a turn costs one read and one increment.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis
from redis.exceptions import AuthenticationError, RedisError

from daca_kit.errors import CountersError

log = logging.getLogger(__name__)

COUNT_KEY = "message_count:{}"
MARK_KEY = "message_counted:{}"
MARK_TTL = 7 * 86400

# KEYS[1] = count key, KEYS[2] = mark key; ARGV[1] = mark ttl. Adds one unless the mark exists.
INCREMENT_ONCE = """
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then
  return redis.call('INCR', KEYS[1])
end
return tonumber(redis.call('GET', KEYS[1]) or '0')
"""

# KEYS[1] = window key; ARGV[1] = limit, ARGV[2] = window seconds. Returns {allowed, retry_after_ms}.
RATE_LIMIT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2] * 1000) end
if n > tonumber(ARGV[1]) then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2] * 1000); ttl = ARGV[2] * 1000 end
  return {0, ttl}
end
return {1, 0}
"""


# Rate limit and count read in one command (a turn then costs two Redis commands in all).
# KEYS[1] = window key, KEYS[2] = count key; ARGV as RATE_LIMIT. Returns {allowed, retry_after_ms, count}.
ADMIT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2] * 1000) end
local count = tonumber(redis.call('GET', KEYS[2]) or '0')
if n > tonumber(ARGV[1]) then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2] * 1000); ttl = ARGV[2] * 1000 end
  return {0, ttl, count}
end
return {1, 0, count}
"""


def describe_redis_url(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}:{parts.port or 6379}"


def explain_redis_error(exc: Exception, setting: str = "REDIS_URL") -> str:
    if isinstance(exc, AuthenticationError) or "WRONGPASS" in str(exc) or "NOAUTH" in str(exc):
        return f"Redis refused the password: check the password in {setting}"
    text = str(exc).lower()
    if (
        "name or service not known" in text
        or "nodename nor servname" in text
        or "temporary failure in name" in text
    ):
        return f"The Redis host name in {setting} did not resolve: check the host"
    if "ssl" in text or "tls" in text or "certificate" in text:
        return f"The TLS handshake with Redis failed: use rediss:// for Upstash and check {setting}"
    if "connection refused" in text or "timed out" in text or "timeout" in text:
        return f"Redis did not answer at {setting}'s host and port (port closed from this host, or the server is down)"
    return f"Redis failed ({type(exc).__name__}): check {setting}"


class RedisCounters:
    """`Counters` on Redis. Every method is one Redis command (plus SCAN pages for `reset`/`all`)."""

    name = "redis"

    def __init__(self, client: redis.Redis, *, label: str = "redis") -> None:
        self.client = client
        self.label = label
        self.commands = 0
        self._lock = threading.Lock()
        self.cooldown = 3.0
        self._failing_since: float | None = None
        self._last_error = ""
        self._increment = client.register_script(INCREMENT_ONCE)
        self._rate = client.register_script(RATE_LIMIT)
        self._admit = client.register_script(ADMIT)

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 2.0) -> RedisCounters:
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        client = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            # One quick retry (a dropped idle connection), not redis-py's default backoff series.
            retry=Retry(NoBackoff(), 1),
            health_check_interval=30,
            decode_responses=True,
            max_connections=50,
        )
        return cls(client, label=describe_redis_url(url))

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        # After a failure, calls fail at once for a few seconds instead of each waiting for a timeout:
        # a Redis that stopped answering must not add seconds to every chat turn.
        if self._failing_since is not None and time.monotonic() - self._failing_since < self.cooldown:
            raise CountersError(f"Could not {what}: {self._last_error}")
        with self._lock:
            self.commands += 1
        try:
            result = fn(*args, **kwargs)
        except RedisError as exc:
            self._last_error = explain_redis_error(exc)
            self._failing_since = time.monotonic()
            raise CountersError(f"Could not {what}: {self._last_error}") from exc
        self._failing_since = None
        return result

    def get(self, user_id: str) -> int:
        return int(self._call("read the message count", self.client.get, COUNT_KEY.format(user_id)) or 0)

    def set(self, user_id: str, value: int) -> None:
        self._call("set the message count", self.client.set, COUNT_KEY.format(user_id), int(value))

    def increment_once(self, user_id: str, event_id: str) -> int:
        keys = [COUNT_KEY.format(user_id), MARK_KEY.format(event_id)]
        return int(self._call("count the message", self._increment, keys=keys, args=[MARK_TTL]))

    def reset(self) -> int:
        cleared = 0
        cursor: int = 0
        while True:
            cursor, keys = self._call(
                "reset the counters", self.client.scan, cursor=cursor, match=COUNT_KEY.format("*"), count=1000
            )
            if keys:
                cleared += int(self._call("reset the counters", self.client.delete, *keys))
            if int(cursor) == 0:
                return cleared

    def all(self, limit: int = 1000) -> dict[str, int]:
        keys: list[str] = []
        cursor: int = 0
        while len(keys) < limit:
            cursor, page = self._call(
                "list the counters", self.client.scan, cursor=cursor, match=COUNT_KEY.format("*"), count=1000
            )
            keys.extend(page)
            if int(cursor) == 0:
                break
        keys = keys[:limit]
        if not keys:
            return {}
        values = self._call("list the counters", self.client.mget, keys)
        prefix = len(COUNT_KEY.format(""))
        return {k[prefix:]: int(v or 0) for k, v in zip(keys, values, strict=True)}

    def hit(self, key: str, limit: int, window: int) -> tuple[bool, float]:
        """Rate limit: counts a hit in a fixed window; returns (allowed, retry_after_seconds)."""
        allowed, retry_ms = self._call(
            "check the rate limit", self._rate, keys=[f"rate:{key}"], args=[limit, window]
        )
        return bool(int(allowed)), int(retry_ms) / 1000.0

    def admit(self, user_id: str, limit: int, window: int) -> tuple[bool, float, int]:
        """Rate limit plus the user's message count, in one command: (allowed, retry_after_s, count)."""
        keys = [f"rate:{user_id}:{window}", COUNT_KEY.format(user_id)]
        allowed, retry_ms, count = self._call(
            "check the rate limit", self._admit, keys=keys, args=[limit, window]
        )
        return bool(int(allowed)), int(retry_ms) / 1000.0, int(count)

    def ping(self) -> None:
        self._call("reach Redis", self.client.ping)

    def close(self) -> None:
        self.client.close()
