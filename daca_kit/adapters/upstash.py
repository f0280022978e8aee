"""Analytics counters on Upstash Redis over its HTTPS REST API (`upstash-redis`).

    counters = UpstashCounters.from_rest(url, token)

For hosts where only port 443 is open (Hugging Face Spaces may close Redis's TCP ports). Same keys and
scripts as `RedisCounters`, so both can share one database. Each HTTPS request is one billed command,
so the meter counts requests in the HTTP transport, the SDK's retries included.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from daca_kit.adapters.network import chain_text, elapsed_ms, first_line, looks_tls, reach, unreachable
from daca_kit.adapters.redis import SCRIPTS, CommandMeter, KeyValueCounters
from daca_kit.core.models import Backend, RoundTrip
from daca_kit.errors import AUTH, ERROR, PORT_CLOSED, TLS, ConfigError, CountersError

SETTING = "UPSTASH_REDIS_REST_URL"

log = logging.getLogger(__name__)


def rest_address(url: str) -> tuple[str, int]:
    """(host, port) of the REST URL, with the default port of its scheme."""
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def explain_upstash_error(
    exc: BaseException, host: str, port: int = 443, secrets: Sequence[str] = (), timeout: float | None = None
) -> CountersError:
    """The CountersError for a failed REST call: a sentence naming the setting to fix, and its `problem`."""
    text = chain_text(exc)
    if "unauthorized" in text or "wrongpass" in text:
        return CountersError(
            "Upstash refused the token: copy the REST token again into UPSTASH_REDIS_REST_TOKEN.",
            problem=AUTH,
        )
    found = unreachable(exc, host, port, setting=SETTING, what="Upstash", error=CountersError)
    if found is not None:
        return found
    if looks_tls(text):
        return CountersError(
            f"The TLS handshake with Upstash at {host} failed: check that {SETTING} starts with https://.",
            problem=TLS,
        )
    if isinstance(exc, httpx.TimeoutException):
        within = f" within {timeout:g} s" if timeout else ""
        return CountersError(
            f"Upstash at {host} did not answer{within}: check {SETTING}, and that the database is up.",
            problem=PORT_CLOSED,
        )
    if isinstance(exc, httpx.TransportError):
        return CountersError(
            f"Upstash at {host} dropped the connection ({type(exc).__name__}): check {SETTING}, and that the "
            "database is up; the next call reconnects."
        )
    return CountersError(
        f"Upstash at {host} failed ({type(exc).__name__}: {first_line(exc, secrets)}): check {SETTING} "
        "and UPSTASH_REDIS_REST_TOKEN.",
        problem=ERROR,
    )


class MeteredTransport(httpx.BaseTransport):
    """An httpx transport that counts each request sent on `meter` (one that never connected is not)."""

    def __init__(self, meter: CommandMeter, inner: httpx.BaseTransport | None = None) -> None:
        self.meter = meter
        self.inner = inner or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = self.inner.handle_request(request)
        except (httpx.ConnectError, httpx.ConnectTimeout):
            raise  # it never reached the service
        except httpx.TransportError:
            self.meter.add()  # sent: the service may have run it, and bills it
            raise
        self.meter.add()
        return response

    def close(self) -> None:
        self.inner.close()


class UpstashCounters(KeyValueCounters):
    """`Counters` on the Upstash REST API; one HTTPS request per command."""

    name = "upstash-rest"
    setting = SETTING

    def __init__(self, client: Any, *, url: str, timeout: float = 1.5, secrets: Sequence[str] = ()) -> None:
        self._host, self._port = rest_address(url)
        self._timeout = timeout
        self._secrets = list(secrets)
        super().__init__(
            backend=Backend("upstash-rest", f"upstash-rest://{self._host}", "Upstash Redis (REST)")
        )
        self.client = client

    @classmethod
    def from_rest(cls, url: str, token: str, *, timeout: float = 1.5) -> UpstashCounters:
        """Counters on Upstash's REST API; a call fails within about 2 x `timeout` seconds (one retry)."""
        from upstash_redis import Redis

        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            raise ConfigError(f"{SETTING} must be the https:// REST URL from the Upstash console.")
        client = Redis(url=url, token=token, rest_retries=1, rest_retry_interval=0.1, allow_telemetry=False)
        counters = cls(client, url=url, timeout=timeout, secrets=[token])
        # The SDK's HTTP client has no timeout, and it retries whatever failed: a request to a host that
        # stopped answering would hang a chat turn. Each attempt gets `timeout` seconds, so two attempts
        # stay within a turn's bound of 5 s; and each attempt is counted where it is sent.
        http = getattr(client, "_http", None)
        if http is not None and isinstance(getattr(http, "_client", None), httpx.Client):
            http._client.close()
            http._client = httpx.Client(
                timeout=httpx.Timeout(timeout), transport=MeteredTransport(counters.meter)
            )
        else:
            log.warning(
                "upstash-redis changed: its requests may have no timeout (a chat turn could hang), "
                "and the usage meter does not see them"
            )
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

    def _explain(self, exc: Exception) -> CountersError:
        # upstash-redis raises UpstashError, and httpx errors for the transport.
        return explain_upstash_error(exc, self._host, self._port, self._secrets, self._timeout)

    def check(self) -> RoundTrip:
        """Opens port 443, then one PING over the REST API (see `Checkable`)."""
        start = time.perf_counter()
        reach(
            self._host,
            self._port,
            setting=SETTING,
            what="Upstash",
            timeout=self._timeout,
            error=CountersError,
        )
        try:
            self.client.ping()
        except Exception as exc:  # noqa: BLE001 - every failure of the REST call is the service's
            raise self._explain(exc) from exc
        return RoundTrip(elapsed_ms(start), "Upstash answered PING over its REST API.")

    def close(self) -> None:
        close = getattr(self.client, "close", None)
        if close:
            close()
