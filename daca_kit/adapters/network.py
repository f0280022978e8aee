"""Reaching a service over TCP, and the words for failing to, shared by the adapters' checks and errors.

    reach("db.example.com", 5432, setting="DATABASE_URL", what="the database server", timeout=3.0)
    found = unreachable(exc, "cache.example.com", 6379, setting="REDIS_URL", what="the Redis server",
                        error=CountersError)   # the CountersError a refused connection means, or None

`reach` resolves the host and opens one TCP connection before any driver speaks, so the two commonest
failures, a wrong host name and a port this host may not open, get their own sentences (`problem` DNS
or PORT_CLOSED). `unreachable` finds the same two failures in a driver's exception and words them the
same way, so a running app and `daca-kit doctor` say the same thing about one failure.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Sequence
from typing import TypeVar
from urllib.parse import unquote

from daca_kit.errors import DNS, PORT_CLOSED, BackendError

E = TypeVar("E", bound=BackendError)

_DNS_WORDS = (
    "name or service not known",
    "nodename nor servname",
    "temporary failure in name resolution",
    "no address associated with hostname",
    "failed to resolve host",
    "could not translate host name",
    "getaddrinfo failed",
    "gaierror",
)
_REFUSED_WORDS = ("connection refused", "connectionrefusederror", "actively refused")
_TLS_WORDS = ("ssl", "tls", "certificate", "wrong version number", "handshake")


def probe_tcp(host: str, port: int, timeout: float) -> tuple[bool, str, float | None]:
    """(open, detail, latency_ms): resolves `host` and opens one TCP connection, then closes it.

    `detail` is "open", DNS (the name did not resolve), "refused", "timed out" or the socket's own words.
    """
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return False, DNS, None
    start = time.perf_counter()
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True, "open", elapsed_ms(start)
    except ConnectionRefusedError:
        return False, "refused", None
    except TimeoutError:
        return False, "timed out", None
    except OSError as exc:
        return False, (exc.strerror or type(exc).__name__).lower(), None


def reach(
    host: str,
    port: int,
    *,
    setting: str,
    what: str,
    timeout: float,
    error: Callable[..., BackendError] = BackendError,
) -> None:
    """Raises `error` (problem DNS or PORT_CLOSED) when `host` does not resolve or `port` does not open."""
    is_open, detail, _latency = probe_tcp(host, port, timeout)
    if is_open:
        return
    if detail == DNS:
        raise error(dns_sentence(host, setting), problem=DNS)
    if detail == "refused":
        why = "the connection was refused"
    elif detail == "timed out":
        why = f"no answer within {timeout:g} s, so a firewall probably drops it"
    else:
        why = detail
    raise error(closed_sentence(host, port, setting, what, why), problem=PORT_CLOSED)


def unreachable(
    exc: BaseException,
    host: str,
    port: int,
    *,
    setting: str,
    what: str,
    error: Callable[..., E],
) -> E | None:
    """The DNS or PORT_CLOSED `error` that a driver's exception reports, in `reach`'s words; else None."""
    text = chain_text(exc)
    if any(word in text for word in _DNS_WORDS):
        return error(dns_sentence(host, setting), problem=DNS)
    if any(word in text for word in _REFUSED_WORDS):
        return error(
            closed_sentence(host, port, setting, what, "the connection was refused"), problem=PORT_CLOSED
        )
    return None


def dns_sentence(host: str, setting: str) -> str:
    return f"The host '{host}' in {setting} did not resolve: check the host name in {setting}."


def closed_sentence(host: str, port: int, setting: str, what: str, why: str) -> str:
    return (
        f"TCP port {port} on {host} is closed from this host ({why}): check the port in {setting}, that "
        f"{what} is running, and that this host may open outbound connections to port {port}."
    )


def chain_text(exc: BaseException) -> str:
    """Every message in the exception's cause chain, lower-cased (drivers wrap the socket's and TLS errors)."""
    texts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        # Some drivers (pika) print nothing: their reason shows only in the exception's repr.
        texts.append(f"{type(current).__name__} {current} {current!r}")
        current = current.__cause__ or current.__context__
    return " ".join(texts).lower()


def looks_tls(text: str) -> bool:
    """True when `chain_text` speaks of TLS (a handshake, a certificate, a protocol mismatch)."""
    return any(word in text for word in _TLS_WORDS)


def first_line(exc: BaseException, secrets: Sequence[str] = ()) -> str:
    """The first line of an exception's text, with every secret removed, for the rare unclassified case."""
    # Some drivers (pika) print nothing: their reason is in `args`, shown by each one's repr.
    whole = str(exc).strip() or " ".join(repr(a) for a in exc.args).strip() or type(exc).__name__
    text = whole.splitlines()[0]
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, "***")
    return text[:200]


def url_password(url: str) -> str | None:
    """The password in a URL's user info, found even when it holds characters that should have been
    percent-encoded (`#`, `?`, `/`), which a strict URL parser would take for the URL's next part."""
    _scheme, sep, rest = url.partition("://")
    userinfo, at, _after = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return None
    return userinfo.split(":", 1)[1]


def url_secrets(url: str) -> list[str]:
    """What `first_line` must never show of a URL: the URL itself and its password, raw and decoded."""
    found = [url]
    password = url_password(url)
    if password:
        found += [password, unquote(password)]
    return found


def elapsed_ms(start: float) -> float:
    """Milliseconds since `start` (a `time.perf_counter()` reading), to one decimal."""
    return round((time.perf_counter() - start) * 1000, 1)
