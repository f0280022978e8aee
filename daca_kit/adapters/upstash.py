"""Analytics counters on Upstash Redis over its HTTPS REST API (`upstash-redis`).

    counters = UpstashCounters.from_rest(url, token)

For hosts where only port 443 is open (Hugging Face Spaces may close Redis's TCP ports). Same keys and
scripts as `RedisCounters`, so both can share one database.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from daca_kit.adapters.redis import SCRIPTS, KeyValueCounters
from daca_kit.core.models import Backend

log = logging.getLogger(__name__)


def explain_upstash_error(exc: Exception, timeout: float | None = None) -> str:
    text = str(exc).lower()
    if "unauthorized" in text or "401" in text or "wrongpass" in text:
        return "Upstash refused the token: check UPSTASH_REDIS_REST_TOKEN"
    if "name or service not known" in text or "resolve" in text or "getaddrinfo" in text:
        return "UPSTASH_REDIS_REST_URL's host did not resolve: copy the REST URL from the Upstash console"
    if "ssl" in text or "certificate" in text:
        return "The TLS handshake with Upstash failed: check UPSTASH_REDIS_REST_URL"
    if isinstance(exc, httpx.TimeoutException):
        within = f" within {timeout:g} s" if timeout else ""
        return f"Upstash did not answer{within}: check UPSTASH_REDIS_REST_URL, and that the database is up"
    if isinstance(exc, httpx.TransportError):
        return (
            f"Could not reach Upstash ({type(exc).__name__}): the host in UPSTASH_REDIS_REST_URL refused or "
            "dropped the connection; check the URL, and that the database is up"
        )
    return f"Upstash failed ({type(exc).__name__}): check UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN"


class UpstashCounters(KeyValueCounters):
    """`Counters` on the Upstash REST API; one HTTPS request per command."""

    name = "upstash-rest"
    setting = "UPSTASH_REDIS_REST_URL"

    def __init__(self, client: Any, *, label: str = "upstash-rest") -> None:
        super().__init__(backend=Backend("upstash-rest", label, "Upstash Redis (REST)"))
        self.client = client
        self.timeout: float | None = None  # seconds per request, when from_rest set one

    @classmethod
    def from_rest(cls, url: str, token: str, *, timeout: float = 1.5) -> UpstashCounters:
        """Counters on Upstash's REST API; a call fails within about 2 x `timeout` seconds (one retry)."""
        from urllib.parse import urlsplit

        from upstash_redis import Redis

        client = Redis(url=url, token=token, rest_retries=1, rest_retry_interval=0.1, allow_telemetry=False)
        # The SDK's HTTP client has no timeout, and it retries whatever failed: a request to a host that
        # stopped answering would hang a chat turn. Each attempt gets `timeout` seconds, so two attempts
        # stay within a turn's bound of 5 s.
        http = getattr(client, "_http", None)
        if http is not None and hasattr(http, "_client"):
            http._client.timeout = httpx.Timeout(timeout)
        else:
            log.warning("upstash-redis changed: its requests may have no timeout (a chat turn could hang)")
        counters = cls(client, label=f"upstash-rest://{urlsplit(url).hostname}")
        counters.timeout = timeout
        return counters

    def _eval(self, script: str, keys: list[str], args: list[Any]) -> Any:
        return self.client.eval(SCRIPTS[script], keys, [str(a) for a in args])

    def _scan(self, cursor: int, match: str) -> tuple[int, list[str]]:
        cursor, keys = self.client.scan(cursor, match=match, count=1000)
        return int(cursor), list(keys)

    def _mget(self, keys: list[str]) -> list[Any]:
        return list(self.client.mget(*keys))

    def _command(self, name: str, *args: Any) -> Any:
        return getattr(self.client, name)(*args)

    def _explain(self, exc: Exception) -> str:
        # upstash-redis raises UpstashError, and httpx errors for the transport.
        return explain_upstash_error(exc, self.timeout)

    def close(self) -> None:
        close = getattr(self.client, "close", None)
        if close:
            close()
