"""`daca-kit doctor`: one harmless round trip to every configured backend, with latency, and on failure
one sentence that says what is wrong and which setting to fix (never a secret).

    results = run_checks(settings)                 # database, counters, events, model
    ports = outbound_ports(settings=settings)      # which outbound ports of the configured hosts are open
    print(format_report(results, ports, fallbacks(ports, settings)))
    exit_code = main(settings)                     # what the CLI runs: 0 all ok or embedded, 1 a failure

Each check first resolves the host and opens a TCP connection, so the common failures are told apart
before any driver speaks: the name did not resolve, the port is closed from this host, then the TLS
handshake, the login, and a missing database, table or permission. A backend with no setting is
reported as "not configured: embedded default in use" (status `embedded`), which is not an error.
"""

from __future__ import annotations

import math
import socket
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from daca_kit.settings import Settings

OK = "ok"
EMBEDDED = "embedded"
FAILED = "failed"
NOT_CONFIGURED = "not configured"  # for accounts (Hugging Face, cron-job.org) that have no setting

# Why a check failed, in the order a connection meets them.
DNS = "name did not resolve"
PORT_CLOSED = "TCP port closed from this host"
TLS = "TLS failed"
AUTH = "authentication failed"
MISSING = "table or permission missing"
ERROR = "error"

EMBEDDED_NOTE = "not configured: embedded default in use"
GEMINI_HOST = "generativelanguage.googleapis.com"


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check. `problem` says why it failed (DNS, PORT_CLOSED, TLS, AUTH, MISSING, ERROR)."""

    backend: str
    setting: str
    status: str
    message: str
    target: str = ""
    latency_ms: float | None = None
    problem: str | None = None

    @property
    def failed(self) -> bool:
        return self.status == FAILED


@dataclass(frozen=True)
class PortTarget:
    """A host and port this app would connect to, and the setting that names it."""

    host: str
    port: int
    service: str = ""
    setting: str = ""


@dataclass(frozen=True)
class PortCheck:
    """Whether a TCP connection to `host:port` opened from this host. `detail`: open, refused, timed out, ..."""

    host: str
    port: int
    service: str
    setting: str
    open: bool
    detail: str
    latency_ms: float | None = None


# Ports the free-tier stack uses; a host may allow only some of them (Spaces may allow 80/443/8080 only).
STANDARD_PORTS: dict[int, str] = {
    443: "HTTPS: Gemini, Upstash REST, cron-job.org, Hugging Face",
    26257: "CockroachDB",
    5432: "Postgres",
    5671: "AMQPS: CloudAMQP",
    5672: "AMQP",
    6379: "Redis, Upstash TCP",
    6380: "Redis over TLS (some providers)",
}


class _Failure(Exception):
    """A classified failure inside a check (carries the sentence and the problem kind)."""

    def __init__(self, problem: str, message: str) -> None:
        super().__init__(message)
        self.problem = problem
        self.message = message


# -- the network part, common to every check ---------------------------------------------------------------
def probe_tcp(host: str, port: int, timeout: float) -> tuple[bool, str, float | None]:
    """(open, detail, latency_ms): resolves `host` and opens one TCP connection, then closes it."""
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return False, DNS, None
    start = time.perf_counter()
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True, "open", _ms(start)
    except ConnectionRefusedError:
        return False, "refused", None
    except TimeoutError:
        return False, "timed out", None
    except OSError as exc:
        return False, (exc.strerror or type(exc).__name__).lower(), None


def _reach(host: str, port: int, setting: str, what: str, timeout: float) -> None:
    """Raises a classified _Failure when `host` does not resolve or `port` does not open."""
    is_open, detail, _latency = probe_tcp(host, port, timeout)
    if is_open:
        return
    if detail == DNS:
        raise _Failure(
            DNS, f"The host '{host}' in {setting} did not resolve: check the host name in {setting}."
        )
    if detail == "refused":
        why = "the connection was refused"
    elif detail == "timed out":
        why = f"no answer within {timeout:g} s, so a firewall probably drops it"
    else:
        why = detail
    raise _Failure(
        PORT_CLOSED,
        f"TCP port {port} on {host} is closed from this host ({why}): check the port in {setting}, that "
        f"{what} is running, and that this host may open outbound connections to port {port}.",
    )


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)


def _short(exc: BaseException, secrets: Sequence[str] = ()) -> str:
    """The first line of an exception's text, with every secret removed, for the rare unclassified case."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, "***")
    return text[:200]


def _url_secrets(url: str) -> list[str]:
    from daca_kit.ops.envfile import url_password

    found = [url]
    password = url_password(url)
    if password:
        found += [password, unquote(password)]
    return found


def _chain_text(exc: BaseException) -> str:
    """Every message in the exception's cause chain, lower-cased (drivers wrap TLS errors)."""
    texts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts.append(f"{type(current).__name__} {current}")
        current = current.__cause__ or current.__context__
    return " ".join(texts).lower()


def _looks_tls(text: str) -> bool:
    return any(word in text for word in ("ssl", "tls", "certificate", "wrong version number", "handshake"))


# -- database ----------------------------------------------------------------------------------------------
def check_database(settings: Settings, timeout: float = 5.0) -> CheckResult:
    from daca_kit.adapters.sql import backend_kind, describe_url, normalize_url

    url = settings.database_url
    kind = backend_kind(url)
    if kind == "sqlite":
        where = url.split("///", 1)[-1] or "memory"
        return CheckResult(
            "database",
            "DATABASE_URL",
            EMBEDDED,
            f"{EMBEDDED_NOTE} (SQLite at {where}); set DATABASE_URL to a CockroachDB or Postgres URL to keep "
            "conversations on a server.",
            target=f"sqlite:{where}",
        )
    from sqlalchemy.engine import make_url

    target = describe_url(url).replace("+psycopg", "")
    try:
        parsed = make_url(normalize_url(url))
    except Exception:  # noqa: BLE001 - a malformed URL is a finding, not a crash
        return _failed(
            "database", "DATABASE_URL", ERROR, "DATABASE_URL is not a valid database URL: check its form.", ""
        )
    host = parsed.host or "localhost"
    port = parsed.port or (26257 if kind == "cockroachdb" else 5432)
    start = time.perf_counter()
    try:
        _reach(host, port, "DATABASE_URL", "the database server", timeout)
        note = _database_round_trip(normalize_url(url), parsed, kind, host, port, timeout)
    except _Failure as failure:
        return _failed("database", "DATABASE_URL", failure.problem, failure.message, target)
    return CheckResult("database", "DATABASE_URL", OK, note, target=target, latency_ms=_ms(start))


def _database_round_trip(full_url: str, parsed: Any, kind: str, host: str, port: int, timeout: float) -> str:
    from sqlalchemy import create_engine, inspect
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.pool import NullPool

    engine = create_engine(
        full_url, poolclass=NullPool, connect_args={"connect_timeout": max(1, math.ceil(timeout))}
    )
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1").scalar()
            if not inspect(conn).has_table("conversation"):
                can_create = _can_create_tables(conn)
                if can_create is False:
                    raise _Failure(
                        MISSING,
                        f"The table 'conversation' does not exist and the user '{parsed.username}' in DATABASE_URL "
                        "may not create tables: grant it CREATE on the database's schema, or create the tables "
                        "once with a user that may.",
                    )
                return (
                    f"{kind} answered; the tables are not created yet: the app creates them at its first start "
                    "(DATABASE_URL's user may do so)."
                )
            conn.exec_driver_sql("SELECT id FROM conversation LIMIT 1").all()
            return f"{kind} answered a query on table 'conversation'."
    except _Failure:
        raise
    except SQLAlchemyError as exc:
        raise _classify_database(exc, parsed, host, port, _url_secrets(full_url)) from None
    finally:
        engine.dispose()


def _can_create_tables(conn: Any) -> bool | None:
    try:
        return bool(conn.exec_driver_sql("SELECT has_schema_privilege(current_schema(), 'CREATE')").scalar())
    except Exception:  # noqa: BLE001 - not every server answers this; then we do not know
        return None


def _classify_database(
    exc: BaseException, parsed: Any, host: str, port: int, secrets: Sequence[str]
) -> _Failure:
    orig = getattr(exc, "orig", None) or exc
    text = _chain_text(orig)
    sqlstate = getattr(orig, "sqlstate", None)
    user, database = parsed.username or "?", parsed.database or "?"
    role_missing = "role" in text and "does not exist" in text
    if "password authentication failed" in text or role_missing or sqlstate in ("28000", "28P01"):
        return _Failure(
            AUTH,
            f"The database server at {host}:{port} refused the login of user '{user}': check the user name and "
            "password in DATABASE_URL.",
        )
    if "database" in text and "does not exist" in text or sqlstate == "3D000":
        return _Failure(
            MISSING,
            f"The database '{database}' named in DATABASE_URL does not exist on {host}:{port}: create it, or fix "
            "the database name at the end of DATABASE_URL.",
        )
    if "permission denied" in text or sqlstate == "42501":
        return _Failure(
            MISSING,
            f"The user '{user}' in DATABASE_URL lacks a permission on the kit's tables: grant it SELECT, INSERT, "
            "UPDATE and DELETE on them (and CREATE on the schema for the first start).",
        )
    if _looks_tls(text):
        return _Failure(
            TLS,
            f"The TLS connection to the database at {host}:{port} failed ({_short(orig, secrets)}): "
            "for CockroachDB put sslmode=verify-full and sslrootcert=<the cluster's CA file> in DATABASE_URL; "
            "for a server without TLS use sslmode=disable.",
        )
    if "timeout" in text or "timed out" in text:
        return _Failure(
            PORT_CLOSED,
            f"The database at {host}:{port} accepted the TCP connection but did not answer in time: check the "
            "port in DATABASE_URL and the server's load.",
        )
    return _Failure(
        ERROR,
        f"The database at {host}:{port} failed ({type(orig).__name__}: {_short(orig, secrets)}): check DATABASE_URL.",
    )


# -- counters ----------------------------------------------------------------------------------------------
def check_counters(settings: Settings, timeout: float = 5.0) -> CheckResult:
    if settings.runtime == "dapr":
        return CheckResult(
            "counters",
            "DACA_RUNTIME",
            OK,
            f"counters go through the Dapr state store '{settings.dapr_statestore}' (see the dapr check).",
            target=f"dapr-state:{settings.dapr_statestore}",
        )
    if settings.upstash_redis_rest_url and settings.upstash_redis_rest_token:
        return _check_upstash(
            settings.upstash_redis_rest_url, settings.upstash_redis_rest_token.get_secret_value(), timeout
        )
    if settings.redis_url is not None:
        return _check_redis(settings.redis_url.get_secret_value(), timeout)
    return CheckResult(
        "counters",
        "REDIS_URL",
        EMBEDDED,
        f"{EMBEDDED_NOTE} (counters in the SQL database); set REDIS_URL (rediss:// for Upstash) or "
        "UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN for Redis.",
        target="sql",
    )


def _check_redis(url: str, timeout: float) -> CheckResult:
    import redis
    from redis.exceptions import RedisError

    from daca_kit.adapters.redis import describe_redis_url

    target = describe_redis_url(url)
    parts = urlsplit(url)
    host, port, tls = parts.hostname or "localhost", parts.port or 6379, parts.scheme == "rediss"
    start = time.perf_counter()
    try:
        _reach(host, port, "REDIS_URL", "the Redis server", timeout)
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        try:
            client.ping()
        finally:
            client.close()
    except _Failure as failure:
        return _failed("counters", "REDIS_URL", failure.problem, failure.message, target)
    except RedisError as exc:
        found = _classify_redis(exc, url, host, port, tls)
        return _failed("counters", "REDIS_URL", found.problem, found.message, target)
    return CheckResult(
        "counters", "REDIS_URL", OK, "Redis answered PING.", target=target, latency_ms=_ms(start)
    )


def _classify_redis(exc: BaseException, url: str, host: str, port: int, tls: bool) -> _Failure:
    from redis.exceptions import AuthenticationError, ResponseError

    text = _chain_text(exc)
    if isinstance(exc, AuthenticationError) or any(
        w in text for w in ("wrongpass", "noauth", "invalid password")
    ):
        return _Failure(
            AUTH, f"Redis at {host}:{port} refused the password: check the password in REDIS_URL."
        )
    if "noperm" in text or (isinstance(exc, ResponseError) and "permission" in text):
        return _Failure(
            MISSING,
            f"Redis at {host}:{port} denied a command to this user (ACL): give the user in REDIS_URL access to "
            "GET, SET, INCR, EVAL and SCAN on keys message_count:*, message_counted:* and rate:*.",
        )
    if tls or _looks_tls(text):
        return _Failure(
            TLS,
            f"The TLS handshake with Redis at {host}:{port} failed: rediss:// needs a TLS port (Upstash's is), "
            "use redis:// for a server without TLS; check REDIS_URL.",
        )
    if host.endswith("upstash.io"):
        return _Failure(
            TLS,
            f"Upstash at {host} closed the connection: Upstash speaks TLS only, so REDIS_URL must start with rediss://.",
        )
    return _Failure(
        ERROR,
        f"Redis at {host}:{port} failed ({type(exc).__name__}: {_short(exc, _url_secrets(url))}): check REDIS_URL.",
    )


def _check_upstash(rest_url: str, token: str, timeout: float) -> CheckResult:
    import httpx

    setting = "UPSTASH_REDIS_REST_URL"
    parts = urlsplit(rest_url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = f"{parts.scheme}://{host}:{port}"
    start = time.perf_counter()
    try:
        if parts.scheme not in ("http", "https") or not host:
            raise _Failure(ERROR, f"{setting} must be the https:// REST URL from the Upstash console.")
        _reach(host, port, setting, "Upstash", timeout)
        try:
            # The REST API takes a command as a JSON array; PING touches no key.
            response = httpx.post(
                rest_url.rstrip("/"),
                json=["PING"],
                headers={"Authorization": f"Bearer {token}"},
                timeout=timeout,
                trust_env=not _is_loopback(host),
            )
        except httpx.HTTPError as exc:
            if _looks_tls(_chain_text(exc)):
                raise _Failure(
                    TLS,
                    f"The TLS handshake with Upstash at {host} failed: check that {setting} starts with https://.",
                ) from None
            raise _Failure(
                ERROR, f"Upstash at {host} failed ({type(exc).__name__}): check {setting}."
            ) from None
        if response.status_code in (401, 403):
            raise _Failure(
                AUTH,
                f"Upstash refused the token ({response.status_code}): copy the REST token again into "
                "UPSTASH_REDIS_REST_TOKEN.",
            )
        if response.status_code >= 400:
            raise _Failure(
                ERROR,
                f"Upstash answered {response.status_code}: check {setting} and UPSTASH_REDIS_REST_TOKEN.",
            )
    except _Failure as failure:
        return _failed(
            "counters", f"{setting}, UPSTASH_REDIS_REST_TOKEN", failure.problem, failure.message, target
        )
    return CheckResult(
        "counters",
        setting,
        OK,
        "Upstash answered PING over its REST API.",
        target=target,
        latency_ms=_ms(start),
    )


# -- events ------------------------------------------------------------------------------------------------
def check_events(settings: Settings, timeout: float = 5.0) -> CheckResult:
    if settings.runtime == "dapr":
        return CheckResult(
            "events",
            "DACA_RUNTIME",
            OK,
            f"events go through the Dapr pub/sub component '{settings.dapr_pubsub}' (see the dapr check).",
            target=f"dapr-pubsub:{settings.dapr_pubsub}",
        )
    if settings.amqp_url is None:
        return CheckResult(
            "events",
            "AMQP_URL",
            EMBEDDED,
            f"{EMBEDDED_NOTE} (in-process event bus); set AMQP_URL (amqps:// for CloudAMQP) for RabbitMQ.",
            target="in-process",
        )
    import pika
    import pika.exceptions

    from daca_kit.adapters.rabbitmq import describe_amqp_url

    url = settings.amqp_url.get_secret_value()
    parts = urlsplit(url)
    tls = parts.scheme == "amqps"
    host, port = parts.hostname or "localhost", parts.port or (5671 if tls else 5672)
    vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    target = describe_amqp_url(url)
    start = time.perf_counter()
    try:
        _reach(host, port, "AMQP_URL", "the RabbitMQ broker", timeout)
        params = pika.URLParameters(url)
        params.connection_attempts = 1
        params.socket_timeout = timeout
        params.stack_timeout = timeout * 2
        params.blocked_connection_timeout = timeout
        params.client_properties = {"connection_name": "daca-kit doctor"}
        connection = pika.BlockingConnection(params)
        try:
            connection.channel().close()
        finally:
            connection.close()
    except _Failure as failure:
        return _failed("events", "AMQP_URL", failure.problem, failure.message, target)
    except (pika.exceptions.AMQPError, OSError) as exc:
        found = _classify_amqp(exc, url, host, port, vhost, tls)
        return _failed("events", "AMQP_URL", found.problem, found.message, target)
    return CheckResult(
        "events",
        "AMQP_URL",
        OK,
        "RabbitMQ accepted the login and opened a channel.",
        target=target,
        latency_ms=_ms(start),
    )


def _classify_amqp(exc: BaseException, url: str, host: str, port: int, vhost: str, tls: bool) -> _Failure:
    import pika.exceptions

    text = _chain_text(exc)
    auth_errors = (pika.exceptions.ProbableAuthenticationError, pika.exceptions.AuthenticationError)
    if isinstance(exc, auth_errors) or "access_refused" in text:
        return _Failure(
            AUTH, f"RabbitMQ at {host}:{port} refused the user name or password: check them in AMQP_URL."
        )
    if isinstance(exc, pika.exceptions.ProbableAccessDeniedError) or "not_allowed" in text:
        return _Failure(
            MISSING,
            f"RabbitMQ at {host}:{port} refused the virtual host '{vhost}': it does not exist or the user may not "
            "use it; check the vhost at the end of AMQP_URL (CloudAMQP's vhost is the user name).",
        )
    if tls or _looks_tls(text):
        return _Failure(
            TLS,
            f"The TLS handshake with RabbitMQ at {host}:{port} failed: amqps:// needs the broker's TLS port "
            "(5671 on CloudAMQP), amqp:// the plain one (5672); check AMQP_URL.",
        )
    return _Failure(
        ERROR,
        f"RabbitMQ at {host}:{port} failed ({type(exc).__name__}: {_short(exc, _url_secrets(url))}): check AMQP_URL.",
    )


# -- model -------------------------------------------------------------------------------------------------
def check_model(settings: Settings, timeout: float = 5.0) -> CheckResult:
    if settings.gemini_api_key is None:
        return CheckResult(
            "model",
            "GEMINI_API_KEY",
            EMBEDDED,
            f"{EMBEDDED_NOTE} (offline reply model); set GEMINI_API_KEY for Gemini replies.",
            target="offline",
        )
    from daca_kit.adapters.gemini import GeminiReplyModel
    from daca_kit.errors import ConfigError, ModelError

    base = settings.gemini_base_url or f"https://{GEMINI_HOST}"
    parts = urlsplit(base)
    host = parts.hostname or GEMINI_HOST
    port = parts.port or (443 if parts.scheme != "http" else 80)
    setting = "GEMINI_BASE_URL" if settings.gemini_base_url else "GEMINI_API_KEY"
    target = f"{parts.scheme or 'https'}://{host}:{port} model {settings.gemini_model}"
    key = settings.gemini_api_key.get_secret_value()
    start = time.perf_counter()
    try:
        _reach(host, port, setting, "the Gemini API", timeout)
        model = GeminiReplyModel(
            key, settings.gemini_model, base_url=settings.gemini_base_url, timeout=timeout, max_retries=1
        )
        try:
            model.ping()
        finally:
            model.close()
    except _Failure as failure:
        if settings.gemini_base_url is None:
            # The default host is in no setting: say what this host lacks and what to set instead.
            return _failed(
                "model",
                "GEMINI_BASE_URL",
                failure.problem,
                f"This host cannot reach the Gemini API at {host}:{port} ({failure.problem}): it needs DNS and "
                "outbound HTTPS; set GEMINI_BASE_URL to a proxy it can reach, or unset GEMINI_API_KEY to use "
                "the offline model.",
                target,
            )
        return _failed("model", setting, failure.problem, failure.message, target)
    except (ModelError, ConfigError) as exc:
        status = getattr(exc, "status", None)
        message = _short(exc, [key])
        if status in (401, 403) or (status == 400 and "key" in message.lower()):
            return _failed(
                "model",
                "GEMINI_API_KEY",
                AUTH,
                f"Gemini refused the API key ({status}): set GEMINI_API_KEY to a "
                "valid key from https://aistudio.google.com/apikey.",
                target,
            )
        if status == 404:
            return _failed("model", "GEMINI_MODEL", MISSING, message, target)
        if _looks_tls(_chain_text(exc)):
            return _failed(
                "model",
                setting,
                TLS,
                f"The TLS handshake with {host} failed: check {setting} and this host's CA certificates.",
                target,
            )
        return _failed("model", "GEMINI_API_KEY, GEMINI_MODEL", ERROR, message, target)
    return CheckResult(
        "model",
        "GEMINI_MODEL",
        OK,
        f"Gemini accepted the key and knows model '{settings.gemini_model}'.",
        target=target,
        latency_ms=_ms(start),
    )


# -- dapr --------------------------------------------------------------------------------------------------
def check_dapr(settings: Settings, timeout: float = 5.0) -> CheckResult:
    import os

    import httpx

    endpoint = settings.dapr_http_endpoint or f"http://127.0.0.1:{os.environ.get('DAPR_HTTP_PORT', '3500')}"
    parts = urlsplit(endpoint)
    host, port = parts.hostname or "127.0.0.1", parts.port or 3500
    start = time.perf_counter()
    try:
        _reach(host, port, "DAPR_HTTP_ENDPOINT", "the Dapr sidecar (daprd)", timeout)
        response = httpx.get(
            endpoint.rstrip("/") + "/v1.0/healthz/outbound", timeout=timeout, trust_env=False
        )
        if response.status_code >= 400:
            raise _Failure(
                ERROR,
                f"The Dapr sidecar answered {response.status_code}: its components (components/*.yaml) did not "
                "load; read daprd's log.",
            )
    except _Failure as failure:
        return _failed("dapr", "DAPR_HTTP_ENDPOINT", failure.problem, failure.message, endpoint)
    except httpx.HTTPError as exc:
        return _failed(
            "dapr", "DAPR_HTTP_ENDPOINT", ERROR, f"The Dapr sidecar failed ({type(exc).__name__}).", endpoint
        )
    return CheckResult(
        "dapr", "DACA_RUNTIME", OK, "the Dapr sidecar is healthy.", target=endpoint, latency_ms=_ms(start)
    )


def _failed(backend: str, setting: str, problem: str, message: str, target: str) -> CheckResult:
    return CheckResult(backend, setting, FAILED, message, target=target, problem=problem)


# -- all checks --------------------------------------------------------------------------------------------
def run_checks(settings: Settings, *, timeout: float = 5.0, progress: bool = False) -> list[CheckResult]:
    """One check per backend, in the order a turn uses them; never raises for a backend's failure."""
    checks: list[tuple[str, Callable[[Settings, float], CheckResult]]] = [
        ("database", check_database),
        ("counters", check_counters),
        ("events", check_events),
        ("model", check_model),
    ]
    if settings.runtime == "dapr":
        checks.append(("dapr", check_dapr))
    steps: Iterable[tuple[str, Callable[[Settings, float], CheckResult]]] = checks
    if progress:
        from tqdm import tqdm

        steps = tqdm(checks, desc="checking backends", unit="backend")
    results = []
    for name, check in steps:
        try:
            results.append(check(settings, timeout))
        except Exception as exc:  # noqa: BLE001 - a doctor reports every backend, whatever one of them does
            results.append(
                _failed(name, "", ERROR, f"The {name} check itself failed ({type(exc).__name__}).", "")
            )
    return results


# -- outbound ports ----------------------------------------------------------------------------------------
def port_targets(settings: Settings) -> list[PortTarget]:
    """The host and port of every configured service (nothing for embedded defaults)."""
    from sqlalchemy.engine import make_url

    from daca_kit.adapters.sql import backend_kind, normalize_url

    targets: list[PortTarget] = []
    kind = backend_kind(settings.database_url)
    if kind != "sqlite":
        try:
            parsed = make_url(normalize_url(settings.database_url))
            port = parsed.port or (26257 if kind == "cockroachdb" else 5432)
            targets.append(PortTarget(parsed.host or "localhost", port, kind, "DATABASE_URL"))
        except Exception:  # noqa: BLE001 - a malformed URL is reported by check_database
            pass
    if settings.redis_url is not None:
        parts = urlsplit(settings.redis_url.get_secret_value())
        targets.append(PortTarget(parts.hostname or "localhost", parts.port or 6379, "redis", "REDIS_URL"))
    if settings.upstash_redis_rest_url:
        parts = urlsplit(settings.upstash_redis_rest_url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        targets.append(PortTarget(parts.hostname or "", port, "upstash-rest", "UPSTASH_REDIS_REST_URL"))
    if settings.amqp_url is not None:
        parts = urlsplit(settings.amqp_url.get_secret_value())
        port = parts.port or (5671 if parts.scheme == "amqps" else 5672)
        targets.append(PortTarget(parts.hostname or "localhost", port, "rabbitmq", "AMQP_URL"))
    if settings.gemini_api_key is not None:
        parts = urlsplit(settings.gemini_base_url or f"https://{GEMINI_HOST}")
        port = parts.port or (80 if parts.scheme == "http" else 443)
        targets.append(PortTarget(parts.hostname or GEMINI_HOST, port, "gemini", "GEMINI_BASE_URL"))
    return targets


def outbound_ports(
    targets: Iterable[PortTarget | tuple[str, int]] | None = None,
    *,
    settings: Settings | None = None,
    probe_host: str | None = None,
    ports: Iterable[int] = STANDARD_PORTS,
    timeout: float = 3.0,
    progress: bool = False,
) -> list[PortCheck]:
    """Opens one TCP connection per target and reports which opened.

    Targets are, in this order: the ones given; else the configured services' hosts (`settings`); plus,
    with `probe_host`, each of `ports` on that host (a host that answers on every port shows what a
    firewall here lets out). Nothing else is contacted.
    """
    chosen: list[PortTarget] = []
    for target in targets or ():
        chosen.append(target if isinstance(target, PortTarget) else PortTarget(target[0], int(target[1])))
    if not chosen and settings is not None:
        chosen = port_targets(settings)
    if probe_host:
        chosen += [PortTarget(probe_host, port, STANDARD_PORTS.get(port, ""), "") for port in ports]
    steps: Iterable[PortTarget] = chosen
    if progress and chosen:
        from tqdm import tqdm

        steps = tqdm(chosen, desc="probing outbound ports", unit="port")
    results = []
    for target in steps:
        is_open, detail, latency = probe_tcp(target.host, target.port, timeout)
        service = target.service or STANDARD_PORTS.get(target.port, "")
        results.append(PortCheck(target.host, target.port, service, target.setting, is_open, detail, latency))
    return results


def fallbacks(ports: Sequence[PortCheck], settings: Settings | None = None) -> list[str]:
    """What to change when a port is closed from here, one sentence each (empty when nothing is closed)."""
    closed = [p for p in ports if not p.open and p.detail != DNS]
    notes: list[str] = []
    upstash_rest = bool(settings and settings.upstash_redis_rest_url and settings.upstash_redis_rest_token)
    https_open = any(p.open and p.port == 443 for p in ports)
    https_closed = any(p.port == 443 for p in closed)
    for port in closed:
        where = f"port {port.port} on {port.host}"
        if port.setting == "REDIS_URL" or (not port.setting and port.port in (6379, 6380)):
            if upstash_rest:
                notes.append(
                    f"Redis TCP {where} is closed from here; the app already uses Upstash's REST API over port "
                    "443 (UPSTASH_REDIS_REST_URL), so REDIS_URL is not needed."
                )
            else:
                via = "" if https_open else " (if port 443 is open here)"
                notes.append(
                    f"Redis TCP {where} is closed from here: use Upstash's REST API over port 443{via} instead: set "
                    "UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN from the Upstash console and unset REDIS_URL."
                )
        elif port.setting == "AMQP_URL" or (not port.setting and port.port in (5671, 5672)):
            notes.append(
                f"RabbitMQ {where} is closed from here: unset AMQP_URL to use the in-process event bus, which needs "
                "no port and suits one container (events then stay inside the app)."
            )
        elif port.setting == "DATABASE_URL" or (not port.setting and port.port in (26257, 5432)):
            notes.append(
                f"The database {where} is closed from here and SQL has no HTTPS fallback: run the app where this "
                "port is open, or leave DATABASE_URL unset for SQLite (a Space does not keep it across restarts)."
            )
        elif port.port == 443 and not any(n.startswith("HTTPS") for n in notes):
            notes.append(
                "HTTPS (port 443) is closed from here: Gemini, Upstash REST and cron-job.org cannot be reached; "
                "the offline reply model and the embedded counters still work."
            )
    if https_closed and upstash_rest and not any("HTTPS" in n for n in notes):
        notes.append(
            "Upstash REST needs port 443, which is closed from here: use REDIS_URL (rediss://) instead."
        )
    return notes


# -- report ------------------------------------------------------------------------------------------------
def describe(result: CheckResult, width: int = 8) -> str:
    """One line: backend, status, latency, the sentence, and where (never a secret)."""
    latency = f"{result.latency_ms:7.1f} ms" if result.latency_ms is not None else " " * 10
    label = result.status.upper() if result.failed else result.status
    where = f"  [{result.target}]" if result.target else ""
    return f"{result.backend:<{width}}  {label:<14} {latency}  {result.message}{where}"


def format_report(
    results: Sequence[CheckResult],
    ports: Sequence[PortCheck] | None = None,
    notes: Sequence[str] | None = None,
) -> str:
    """A plain-text report: one line per backend, then the ports and fallbacks, then a summary line."""
    lines = ["Backends:"]
    width = max((len(r.backend) for r in results), default=8)
    lines += ["  " + describe(r, width) for r in results]
    if ports is not None or notes:
        lines += format_ports(ports or [], notes).splitlines()
    counts = {
        status: sum(1 for r in results if r.status == status)
        for status in (OK, EMBEDDED, NOT_CONFIGURED, FAILED)
    }
    summary = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
    lines.append(("FAILED: " if counts[FAILED] else "All good: ") + (summary or "nothing checked"))
    return "\n".join(lines)


def format_ports(ports: Sequence[PortCheck], notes: Sequence[str] | None = None) -> str:
    """The outbound port lines of the report, and the fallbacks that apply."""
    lines = ["Outbound ports from this host:"]
    if not ports:
        lines.append("  nothing to probe: no remote service is configured.")
    for p in ports:
        state = "open" if p.open else f"CLOSED ({p.detail})"
        latency = f" {p.latency_ms:.1f} ms" if p.latency_ms is not None else ""
        about = ", ".join(x for x in (p.service, p.setting) if x)
        lines.append(f"  {p.host}:{p.port:<6} {state}{latency}" + (f"  ({about})" if about else ""))
    if notes:
        lines.append("Fallbacks:")
        lines += [f"  - {note}" for note in notes]
    return "\n".join(lines)


def exit_code(results: Sequence[CheckResult]) -> int:
    return 1 if any(r.failed for r in results) else 0


def main(settings: Settings, *, timeout: float = 5.0) -> int:
    """`daca-kit doctor`: prints the report; 0 when every backend is ok or embedded, 1 when one failed."""
    results = run_checks(settings, timeout=timeout)
    ports = outbound_ports(settings=settings, timeout=min(timeout, 3.0))
    print(format_report(results, ports, fallbacks(ports, settings)), file=sys.stdout, flush=True)
    return exit_code(results)


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "127.0.0.1", "::1") or host.startswith("127.")
