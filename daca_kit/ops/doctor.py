"""`daca-kit doctor`: one harmless round trip to every configured backend, with latency, and on failure
one sentence that says what is wrong and which setting to fix (never a secret); then which outbound
ports of the configured hosts open from here, and what to change where one is closed.

    results = run_checks(settings)                 # database, counters, events, model
    ports = outbound_ports(settings=settings)      # which outbound ports of the configured hosts are open
    print(format_report(results, ports, fallbacks(ports, settings)))
    exit_code = main(settings)                     # what the CLI runs: 0 all ok or embedded, 1 a failure

The checks live in `daca_kit.ops.checks` (each asks the adapter for its own round trip and sentence);
this module re-exports them, so `doctor.check_model(settings)` reads as before.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from daca_kit.adapters.network import probe_tcp
from daca_kit.errors import AUTH, DNS, ERROR, MISSING, PORT_CLOSED, TLS
from daca_kit.ops.checks import (
    EMBEDDED,
    EMBEDDED_NOTE,
    FAILED,
    NOT_CONFIGURED,
    OK,
    CheckResult,
    check_counters,
    check_dapr,
    check_database,
    check_events,
    check_model,
    run_checks,
)
from daca_kit.settings import Settings

__all__ = [
    "AUTH",
    "DNS",
    "EMBEDDED",
    "EMBEDDED_NOTE",
    "ERROR",
    "FAILED",
    "MISSING",
    "NOT_CONFIGURED",
    "OK",
    "PORT_CLOSED",
    "STANDARD_PORTS",
    "TLS",
    "CheckResult",
    "PortCheck",
    "PortTarget",
    "check_counters",
    "check_dapr",
    "check_database",
    "check_events",
    "check_model",
    "describe",
    "exit_code",
    "fallbacks",
    "format_ports",
    "format_report",
    "main",
    "outbound_ports",
    "port_targets",
    "run_checks",
]


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


# -- outbound ports ----------------------------------------------------------------------------------------
def port_targets(settings: Settings) -> list[PortTarget]:
    """The host and port of every configured service (nothing for embedded defaults)."""
    from daca_kit.adapters.sql import backend_kind, server_address

    targets: list[PortTarget] = []
    kind = backend_kind(settings.database_url)
    if kind != "sqlite":
        try:
            targets.append(PortTarget(*server_address(settings.database_url), kind, "DATABASE_URL"))
        except Exception:  # noqa: BLE001 - a malformed URL is reported by check_database
            pass
    if settings.redis_url is not None:
        from daca_kit.adapters.redis import redis_address

        targets.append(
            PortTarget(*redis_address(settings.redis_url.get_secret_value()), "redis", "REDIS_URL")
        )
    if settings.upstash_redis_rest_url:
        from daca_kit.adapters.upstash import rest_address

        host, port = rest_address(settings.upstash_redis_rest_url)
        targets.append(PortTarget(host, port, "upstash-rest", "UPSTASH_REDIS_REST_URL"))
    if settings.amqp_url is not None:
        from daca_kit.adapters.rabbitmq import amqp_address

        host, port, _vhost = amqp_address(settings.amqp_url.get_secret_value())
        targets.append(PortTarget(host, port, "rabbitmq", "AMQP_URL"))
    if settings.gemini_api_key is not None:
        from daca_kit.adapters.gemini import gemini_address

        _scheme, host, port = gemini_address(settings.gemini_base_url)
        targets.append(PortTarget(host, port, "gemini", "GEMINI_BASE_URL"))
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
