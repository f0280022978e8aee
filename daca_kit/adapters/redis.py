"""Analytics counters and the shared rate limit on Redis (redis-py; `redis://`, or `rediss://` for Upstash).

    counters = RedisCounters.from_url("rediss://default:TOKEN@HOST:6379")

Keys: `message_count:{user_id}` (the tutorial's), `message_counted:{event_id}` (idempotency marks, kept
for a week), `rate:{user_id}:{window}` (rate limit). One command per call: the idempotent increment
is a Lua script, so a turn costs one read and one increment.

The usage meter counts commands where they leave the client, not per call: each command a connection
sends, whatever sent it (a call, the script reload after NOSCRIPT, a retry on a new connection, the
connection's handshake, redis-py's health-check PING), which is what the server runs and Upstash bills.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import redis
from redis.exceptions import AuthenticationError, RedisError, ResponseError

from daca_kit.adapters.network import chain_text, elapsed_ms, first_line, looks_tls, reach, unreachable
from daca_kit.core.analytics import COUNT_KEY
from daca_kit.core.models import Backend, RoundTrip
from daca_kit.errors import AUTH, ERROR, MISSING, PORT_CLOSED, TLS, CountersError

log = logging.getLogger(__name__)

MARK_KEY = "message_counted:{}"
MARK_TTL = 7 * 86400

# KEYS[1] = count key, KEYS[2] = mark key; ARGV[1] = mark ttl. Adds one unless the mark exists.
INCREMENT_ONCE = """
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then
  return redis.call('INCR', KEYS[1])
end
return tonumber(redis.call('GET', KEYS[1]) or '0')
"""

# KEYS = count key, mark key, pairwise, one pair per event; ARGV[1] = mark ttl. Returns how many were new.
INCREMENT_MANY = """
local added = 0
for i = 1, #KEYS, 2 do
  if redis.call('SET', KEYS[i + 1], '1', 'NX', 'EX', ARGV[1]) then
    redis.call('INCR', KEYS[i])
    added = added + 1
  end
end
return added
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


def redis_address(url: str) -> tuple[str, int]:
    """(host, port) of a Redis URL, with Redis's default port."""
    parts = urlsplit(url)
    return parts.hostname or "localhost", parts.port or 6379


def describe_redis_url(url: str) -> str:
    host, port = redis_address(url)
    return f"{urlsplit(url).scheme}://{host}:{port}"


def redis_backend(label: str) -> Backend:
    tls = label.startswith("rediss")
    return Backend("redis", label, "Redis over TLS (e.g. Upstash)" if tls else "Redis")


def explain_redis_error(
    exc: BaseException,
    setting: str = "REDIS_URL",
    *,
    host: str = "localhost",
    port: int = 6379,
    tls: bool = False,
    secrets: Sequence[str] = (),
) -> CountersError:
    """The CountersError for a redis-py failure: a sentence naming the setting to fix, and its `problem`."""
    text = chain_text(exc)
    where = f"Redis at {host}:{port}"
    if isinstance(exc, AuthenticationError) or any(
        w in text for w in ("wrongpass", "noauth", "invalid password")
    ):
        return CountersError(f"{where} refused the password: check the password in {setting}.", problem=AUTH)
    if "noperm" in text or (isinstance(exc, ResponseError) and "permission" in text):
        return CountersError(
            f"{where} denied a command to this user (ACL): give the user in {setting} access to "
            "GET, SET, INCR, EVAL and SCAN on keys message_count:*, message_counted:* and rate:*.",
            problem=MISSING,
        )
    found = unreachable(exc, host, port, setting=setting, what="the Redis server", error=CountersError)
    if found is not None:
        return found
    # redis-py says "connecting to" while it connects, which over rediss:// includes the TLS handshake
    # (a timeout there is more likely a firewall than TLS: that one stays unclassified).
    connecting = "connecting to" in text and not isinstance(exc, redis.TimeoutError)
    if looks_tls(text) or (tls and connecting):
        return CountersError(
            f"The TLS handshake with {where} failed: rediss:// needs a TLS port (Upstash's is), "
            f"use redis:// for a server without TLS; check {setting}.",
            problem=TLS,
        )
    if host.endswith("upstash.io") and not tls:
        return CountersError(
            f"Upstash at {host} closed the connection: Upstash speaks TLS only, so {setting} must start "
            "with rediss://.",
            problem=TLS,
        )
    if isinstance(exc, redis.TimeoutError):
        return CountersError(
            f"{where} did not answer in time: check that the server in {setting} is up and that this host "
            "may reach it.",
            problem=PORT_CLOSED,
        )
    if any(w in text for w in ("reset by peer", "closed by server", "broken pipe")):
        return CountersError(
            f"{where} dropped the connection: check that the server in {setting} is running; the next "
            "call reconnects."
        )
    return CountersError(
        f"{where} failed ({type(exc).__name__}: {first_line(exc, secrets)}): check {setting}.", problem=ERROR
    )


SCRIPTS = {
    "increment_once": INCREMENT_ONCE,
    "increment_many": INCREMENT_MANY,
    "rate_limit": RATE_LIMIT,
    "admit": ADMIT,
}


class CommandMeter:
    """Commands (or REST requests) sent to a service, counted by its transport; thread-safe."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def add(self, n: int = 1) -> None:
        with self._lock:
            self.count += n


class _MeteredConnection:
    """Mixed into a redis-py connection class: counts each command the connection has sent."""

    meter: CommandMeter

    def send_command(self, *args: Any, **kwargs: Any) -> None:
        super().send_command(*args, **kwargs)  # type: ignore[misc]
        self.meter.add()


def meter_connections(pool: redis.ConnectionPool, meter: CommandMeter) -> None:
    """Makes every connection `pool` opens from now on count its commands on `meter`.

    redis-py sends every command through `Connection.send_command`: the client's calls, a script's
    SCRIPT LOAD after NOSCRIPT, retries, the handshake (HELLO, AUTH, SELECT) and health-check PINGs
    (the kit sends no pipelines, whose commands go out packed together).
    """
    base = pool.connection_class
    pool.connection_class = type(f"Metered{base.__name__}", (_MeteredConnection, base), {"meter": meter})


class KeyValueCounters:
    """The counters' logic on Redis commands, shared by the TCP (redis-py) and REST (Upstash) adapters.

    Subclasses supply the transport (`_eval`, `_scan`, `_mget`, `_command`, `_explain`) and `check`.
    """

    name = "redis"
    setting = "REDIS_URL"

    def __init__(self, *, backend: Backend) -> None:
        self.backend = backend
        self.meter = CommandMeter()  # fed by the subclass's transport
        self.cooldown = 3.0
        self._failing_since: float | None = None
        self._last_error = CountersError("")

    @property
    def commands(self) -> int:
        """Commands sent so far, as the server counts them (what `/usage` and the benchmark read)."""
        return self.meter.count

    @property
    def calls(self) -> int:
        return self.meter.count

    # -- transport, per subclass --------------------------------------------------------------
    def _eval(self, script: str, keys: list[str], args: list[Any]) -> Any:
        raise NotImplementedError

    def _scan(self, cursor: int, match: str) -> tuple[int, list[str]]:
        raise NotImplementedError

    def _mget(self, keys: list[str]) -> list[Any]:
        raise NotImplementedError

    def _command(self, name: str, *args: Any) -> Any:
        raise NotImplementedError

    def _explain(self, exc: Exception) -> CountersError | None:
        """The error for a transport failure, or None when `exc` is not one (it propagates)."""
        raise NotImplementedError

    def check(self) -> RoundTrip:
        """One PING after opening the service's port, raising the same errors as `_explain` (`Checkable`)."""
        raise NotImplementedError

    # -- one metered, guarded call ------------------------------------------------------------
    def _call(self, what: str, fn: Any, *args: Any) -> Any:
        # After a failure, calls fail at once for a few seconds instead of each waiting for a timeout:
        # a Redis that stopped answering must not add seconds to every chat turn.
        if self._failing_since is not None and time.monotonic() - self._failing_since < self.cooldown:
            raise CountersError(f"Could not {what}: {self._last_error}", problem=self._last_error.problem)
        try:
            result = fn(*args)
        except Exception as exc:
            reason = self._explain(exc)
            if reason is None:
                raise
            self._last_error = reason
            self._failing_since = time.monotonic()
            raise CountersError(f"Could not {what}: {reason}", problem=reason.problem) from exc
        self._failing_since = None
        return result

    # -- the Counters port --------------------------------------------------------------------
    def get(self, user_id: str) -> int:
        return int(self._call("read the message count", self._command, "get", COUNT_KEY.format(user_id)) or 0)

    def set(self, user_id: str, value: int) -> None:
        self._call("set the message count", self._command, "set", COUNT_KEY.format(user_id), int(value))

    def increment_once(self, user_id: str, event_id: str) -> int:
        keys = [COUNT_KEY.format(user_id), MARK_KEY.format(event_id)]
        return int(self._call("count the message", self._eval, "increment_once", keys, [MARK_TTL]))

    def increment_many(self, events: Sequence[tuple[str, str]]) -> int:
        if not events:
            return 0
        keys = [
            key
            for user_id, event_id in events
            for key in (COUNT_KEY.format(user_id), MARK_KEY.format(event_id))
        ]
        return int(self._call("count the messages", self._eval, "increment_many", keys, [MARK_TTL]))

    def _count_keys(self, what: str, limit: int | None = None) -> list[str]:
        keys: list[str] = []
        cursor = 0
        while limit is None or len(keys) < limit:
            cursor, page = self._call(what, self._scan, cursor, COUNT_KEY.format("*"))
            keys.extend(page)
            if int(cursor) == 0:
                break
        return keys if limit is None else keys[:limit]

    def reset(self) -> int:
        keys = self._count_keys("reset the counters")
        cleared = 0
        for start in range(0, len(keys), 500):
            cleared += int(
                self._call("reset the counters", self._command, "delete", *keys[start : start + 500])
            )
        return cleared

    def all(self, limit: int = 1000) -> dict[str, int]:
        keys = self._count_keys("list the counters", limit)
        if not keys:
            return {}
        values = self._call("list the counters", self._mget, keys)
        prefix = len(COUNT_KEY.format(""))
        return {k[prefix:]: int(v or 0) for k, v in zip(keys, values, strict=True)}

    def hit(self, key: str, limit: int, window: int) -> tuple[bool, float]:
        """Rate limit: counts a hit in a fixed window; returns (allowed, retry_after_seconds)."""
        allowed, retry_ms = self._call(
            "check the rate limit", self._eval, "rate_limit", [f"rate:{key}"], [limit, window]
        )
        return bool(int(allowed)), int(retry_ms) / 1000.0

    def admit(self, user_id: str, limit: int, window: int) -> tuple[bool, float, int]:
        """Rate limit plus the user's message count, in one command: (allowed, retry_after_s, count)."""
        keys = [f"rate:{user_id}:{window}", COUNT_KEY.format(user_id)]
        allowed, retry_ms, count = self._call(
            "check the rate limit", self._eval, "admit", keys, [limit, window]
        )
        return bool(int(allowed)), int(retry_ms) / 1000.0, int(count)

    def ping(self) -> None:
        self._call(f"reach {self.name}", self._command, "ping")

    def close(self) -> None:
        raise NotImplementedError


class RedisCounters(KeyValueCounters):
    """`Counters` on Redis over TCP. Every method is one Redis command (plus SCAN pages for `reset`/`all`);
    the meter counts the commands the client's connections send (`meter_connections`)."""

    name = "redis"

    def __init__(self, client: redis.Redis, *, label: str = "redis://localhost:6379") -> None:
        super().__init__(backend=redis_backend(label))
        self.client = client
        meter_connections(client.connection_pool, self.meter)
        self._scripts = {name: client.register_script(text) for name, text in SCRIPTS.items()}
        pool = client.connection_pool
        options = pool.connection_kwargs
        self._socket = "path" in options  # a unix socket: no host or port to reach
        self._host = str(options.get("host") or "localhost")
        self._port = int(options.get("port") or 6379)
        self._tls = issubclass(pool.connection_class, redis.SSLConnection)
        self._timeout = float(options.get("socket_connect_timeout") or 2.0)
        self._secrets = [str(options["password"])] if options.get("password") else []

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 2.0) -> RedisCounters:
        from redis.backoff import NoBackoff
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.maint_notifications import MaintNotificationsConfig
        from redis.retry import Retry

        client = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            # One quick retry of a dropped idle connection, not redis-py's default backoff series; a
            # timeout is not retried, so a Redis that stopped answering costs a turn `timeout` s, not 2x.
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
            # Every command is billed on Upstash, so none is sent that the counters do not need: no
            # health-check PING before a command on a connection idle for a while (at a few turns a
            # minute that was one more command per turn; the retry above covers a dropped connection),
            # and a bare handshake: RESP2 (no HELLO), no CLIENT SETINFO, no CLIENT MAINT_NOTIFICATIONS.
            health_check_interval=0,
            protocol=2,
            driver_info=None,
            maint_notifications_config=MaintNotificationsConfig(enabled=False),
            decode_responses=True,
            max_connections=50,
        )
        return cls(client, label=describe_redis_url(url))

    def _eval(self, script: str, keys: list[str], args: list[Any]) -> Any:
        return self._scripts[script](keys=keys, args=args)

    def _scan(self, cursor: int, match: str) -> tuple[int, list[str]]:
        next_cursor, keys = self.client.scan(cursor=cursor, match=match, count=1000)
        return int(next_cursor), [str(k) for k in keys]

    def _mget(self, keys: list[str]) -> list[Any]:
        return self.client.mget(keys)  # type: ignore[no-any-return]

    def _command(self, name: str, *args: Any) -> Any:
        return getattr(self.client, name)(*args)

    def _explain(self, exc: Exception) -> CountersError | None:
        return self._error(exc) if isinstance(exc, RedisError) else None

    def _error(self, exc: RedisError) -> CountersError:
        return explain_redis_error(
            exc, self.setting, host=self._host, port=self._port, tls=self._tls, secrets=self._secrets
        )

    def check(self) -> RoundTrip:
        """Opens the port, then one PING on the adapter's own client (see `Checkable`)."""
        start = time.perf_counter()
        if not self._socket:
            reach(
                self._host,
                self._port,
                setting=self.setting,
                what="the Redis server",
                timeout=self._timeout,
                error=CountersError,
            )
        try:
            self.client.ping()
        except RedisError as exc:
            raise self._error(exc) from exc
        return RoundTrip(elapsed_ms(start), "Redis answered PING.")

    def close(self) -> None:
        self.client.close()
