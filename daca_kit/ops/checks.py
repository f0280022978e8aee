"""One check per backend for `daca-kit doctor`: the adapter the settings name, built with a short
timeout, asked for its own round trip.

    result = check_counters(settings, timeout=3.0)  # status "ok", message "Redis answered PING.", latency
    results = run_checks(settings)                  # database, counters, events, model (and dapr)

Each check has the composition root build the real service's adapter the settings name, with a short
timeout (`daca_kit.bootstrap.service_counters` and its kin), and runs its `check()` (`Checkable`): the
adapter resolves the host and opens the port before its driver speaks, then makes one round trip. A
failure is the adapter's own `BackendError`, so the check shows the sentence the running app would
show, and its `problem` (DNS, PORT_CLOSED, TLS, AUTH, MISSING, ERROR). A backend with no setting is
reported as "not configured: embedded default in use" (status `embedded`), which is not an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from daca_kit.adapters.sql import describe_url
from daca_kit.bootstrap import service_bus, service_counters, service_database, service_model
from daca_kit.core.ports import Checkable
from daca_kit.errors import AUTH, DNS, ERROR, MISSING, PORT_CLOSED, TLS, BackendError, DacaError
from daca_kit.settings import Settings

OK = "ok"
EMBEDDED = "embedded"
FAILED = "failed"
NOT_CONFIGURED = "not configured"  # for accounts (Hugging Face, cron-job.org) that have no setting

EMBEDDED_NOTE = "not configured: embedded default in use"


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


# -- the adapters' own round trips -------------------------------------------------------------------------
def _round_trip(
    backend: str,
    setting: str,
    build: Callable[[], Checkable | None],
    embedded: CheckResult,
    *,
    target: str | None = None,
    failed_setting: str | Callable[[str], str] | None = None,
) -> CheckResult:
    """Builds the service's adapter (None: `embedded` runs), runs its `check()` and closes it.

    The adapter's BackendError becomes a failed result: its sentence, its `problem`, and the setting to fix
    (`failed_setting`, a name or one per problem; `setting` by default).
    """
    try:
        adapter = build()
    except DacaError as exc:  # a setting the adapter refuses (ConfigError) is a finding, not a crash
        problem = exc.problem if isinstance(exc, BackendError) else ERROR
        return _failed(backend, setting, problem, str(exc), target or "")
    if adapter is None:
        return embedded
    where = target or adapter.backend.label
    try:
        trip = adapter.check()
    except BackendError as exc:
        fix = failed_setting(exc.problem) if callable(failed_setting) else failed_setting or setting
        return _failed(backend, fix, exc.problem, str(exc), where)
    finally:
        adapter.close()
    return CheckResult(backend, setting, OK, trip.note, target=where, latency_ms=trip.latency_ms)


def _failed(backend: str, setting: str, problem: str, message: str, target: str) -> CheckResult:
    return CheckResult(backend, setting, FAILED, message, target=target, problem=problem)


def _embedded(backend: str, setting: str, what: str, target: str, how: str) -> CheckResult:
    """The embedded default `what` runs, and `how` to switch to the real service."""
    return CheckResult(backend, setting, EMBEDDED, f"{EMBEDDED_NOTE} ({what}); {how}", target=target)


def _via_dapr(backend: str, component: str, name: str, kind: str) -> CheckResult:
    note = f"{backend} go through the Dapr {component} '{name}' (see the dapr check)."
    return CheckResult(backend, "DACA_RUNTIME", OK, note, target=f"{kind}:{name}")


def check_database(settings: Settings, timeout: float = 5.0) -> CheckResult:
    url = settings.database_url
    where = url.split("///", 1)[-1] or "memory"
    sqlite = _embedded(
        "database",
        "DATABASE_URL",
        f"SQLite at {where}",
        f"sqlite:{where}",
        "set DATABASE_URL to a CockroachDB or Postgres URL to keep conversations on a server.",
    )
    return _round_trip(
        "database",
        "DATABASE_URL",
        lambda: service_database(settings, timeout=timeout),
        sqlite,
        target=describe_url(url).replace("+psycopg", ""),
    )


def check_counters(settings: Settings, timeout: float = 5.0) -> CheckResult:
    if settings.runtime == "dapr":
        return _via_dapr("counters", "state store", settings.dapr_statestore, "dapr-state")
    sql = _embedded(
        "counters",
        "REDIS_URL",
        "counters in the SQL database",
        "sql",
        "set REDIS_URL (rediss:// for Upstash) or UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN for Redis.",
    )
    upstash = bool(settings.upstash_redis_rest_url)  # Settings accepts the REST URL only with its token
    return _round_trip(
        "counters",
        "UPSTASH_REDIS_REST_URL" if upstash else "REDIS_URL",
        lambda: service_counters(settings, timeout=timeout),
        sql,
        failed_setting="UPSTASH_REDIS_REST_URL, UPSTASH_REDIS_REST_TOKEN" if upstash else None,
    )


def check_events(settings: Settings, timeout: float = 5.0) -> CheckResult:
    if settings.runtime == "dapr":
        return _via_dapr("events", "pub/sub component", settings.dapr_pubsub, "dapr-pubsub")
    in_process = _embedded(
        "events",
        "AMQP_URL",
        "in-process event bus",
        "in-process",
        "set AMQP_URL (amqps:// for CloudAMQP) for RabbitMQ.",
    )
    return _round_trip("events", "AMQP_URL", lambda: service_bus(settings, timeout=timeout), in_process)


# Which setting to change for each way a Gemini check fails.
_GEMINI_SETTINGS = {AUTH: "GEMINI_API_KEY", MISSING: "GEMINI_MODEL"} | dict.fromkeys(
    (DNS, PORT_CLOSED, TLS), "GEMINI_BASE_URL"
)


def check_model(settings: Settings, timeout: float = 5.0) -> CheckResult:
    offline = _embedded(
        "model", "GEMINI_API_KEY", "offline reply model", "offline", "set GEMINI_API_KEY for Gemini replies."
    )
    if settings.gemini_api_key is None:
        return offline  # before importing the Gemini SDK
    from daca_kit.adapters.gemini_errors import gemini_address

    scheme, host, port = gemini_address(settings.gemini_base_url)
    return _round_trip(
        "model",
        "GEMINI_MODEL",
        lambda: service_model(settings, timeout=timeout),
        offline,
        target=f"{scheme}://{host}:{port} model {settings.gemini_model}",
        failed_setting=lambda problem: _GEMINI_SETTINGS.get(problem, "GEMINI_API_KEY, GEMINI_MODEL"),
    )


def check_dapr(settings: Settings, timeout: float = 5.0) -> CheckResult:
    from daca_kit.adapters.dapr.sidecar import DaprSidecar

    sidecar = DaprSidecar.from_settings(settings, timeout=timeout)
    try:
        trip = sidecar.check()
    except BackendError as exc:
        return _failed("dapr", sidecar.setting, exc.problem, str(exc), sidecar.endpoint)
    finally:
        sidecar.close()
    return CheckResult(
        "dapr", "DACA_RUNTIME", OK, trip.note, target=sidecar.endpoint, latency_ms=trip.latency_ms
    )


# -- all checks --------------------------------------------------------------------------------------------
def run_checks(settings: Settings, *, timeout: float = 5.0, progress: bool = False) -> list[CheckResult]:
    """One check per backend, in the order a turn uses them; never raises for a backend's failure."""
    checks = [check_database, check_counters, check_events, check_model]
    checks += [check_dapr] if settings.runtime == "dapr" else []
    steps: Iterable[Callable[[Settings, float], CheckResult]] = checks
    if progress:
        from tqdm import tqdm

        steps = tqdm(checks, desc="checking backends", unit="backend")
    results = []
    for check in steps:
        try:
            results.append(check(settings, timeout))
        except Exception as exc:  # noqa: BLE001 - a doctor reports every backend, whatever one of them does
            name = check.__name__.removeprefix("check_")
            results.append(
                _failed(name, "", ERROR, f"The {name} check itself failed ({type(exc).__name__}).", "")
            )
    return results
