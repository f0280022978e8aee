"""Which outbound ports of the configured services open from where the app runs, and the fallback when
one is closed. The running app checks this once at start (`GET /health`, the Usage tab); `daca-kit
doctor` and notebook 01 print the same.

    ports = outbound_ports(settings=settings)          # one TCP connection per configured service
    notes = fallbacks(ports, settings)                 # what to change where a port is closed
    report = reachability(settings)                    # both, as the app keeps them (a core record)

Hugging Face documents that a Space may open ports 80, 443 and 8080 only (hub-docs
`spaces-overview.md`, "Networking": "Any requests going to other ports will be blocked"), which
would close CockroachDB's 26257, Postgres's 5432, AMQPS's 5671 and Redis's 6379; only a live Space
shows what its network really allows, which is why the app looks for itself. A probe opens a TCP
connection and closes it: no protocol is spoken, so no free-tier quota is spent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from daca_kit.adapters.network import probe_tcp
from daca_kit.core.models import PortCheck, Reachability
from daca_kit.errors import DNS
from daca_kit.settings import Settings

# Ports the free-tier stack uses; a host may allow only some of them (Spaces: 80, 443 and 8080).
STANDARD_PORTS: dict[int, str] = {
    443: "HTTPS: Gemini, Upstash REST, cron-job.org, Hugging Face",
    26257: "CockroachDB",
    5432: "Postgres",
    5671: "AMQPS: CloudAMQP",
    5672: "AMQP",
    6379: "Redis, Upstash TCP",
    6380: "Redis over TLS (some providers)",
}


@dataclass(frozen=True)
class PortTarget:
    """A host and port this app would connect to, and the setting that names it."""

    host: str
    port: int
    service: str = ""
    setting: str = ""


def port_targets(settings: Settings) -> list[PortTarget]:
    """The host and port of every configured service (nothing for embedded defaults)."""
    from daca_kit.adapters.sql import backend_kind, server_address

    targets: list[PortTarget] = []
    kind = backend_kind(settings.database_url)
    if kind != "sqlite":
        try:
            targets.append(PortTarget(*server_address(settings.database_url), kind, "DATABASE_URL"))
        except Exception:  # noqa: BLE001 - a malformed URL is reported by the database check itself
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
        from daca_kit.adapters.gemini_errors import gemini_address

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
            notes.append(_redis_fallback(where, upstash_rest, https_open))
        elif port.setting == "AMQP_URL" or (not port.setting and port.port in (5671, 5672)):
            notes.append(
                f"RabbitMQ {where} is closed from here: unset AMQP_URL to use the in-process event bus, which needs "
                "no port and suits one container (events then stay inside the app)."
            )
        elif port.setting == "DATABASE_URL" or (not port.setting and port.port in (26257, 5432)):
            notes.append(
                f"The database {where} is closed from here and SQL has no REST fallback in the kit: point "
                "DATABASE_URL at a Postgres reachable on a port this host may open (443, or 5432 where it is "
                "open), or run the app where this port is open."
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


def _redis_fallback(where: str, upstash_rest: bool, https_open: bool) -> str:
    if upstash_rest:
        return (
            f"Redis TCP {where} is closed from here; the app already uses Upstash's REST API over port 443 "
            "(UPSTASH_REDIS_REST_URL), so REDIS_URL is not needed."
        )
    via = "" if https_open else " (if port 443 is open here)"
    return (
        f"Redis TCP {where} is closed from here: use Upstash's REST API over port 443{via} instead: set "
        "UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN from the Upstash console and unset REDIS_URL."
    )


def reachability(settings: Settings, *, timeout: float = 3.0) -> Reachability:
    """The configured services' ports probed from here, with the fallbacks that apply (never raises)."""
    try:
        ports = outbound_ports(settings=settings, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - a start-up report must not stop the app
        note = f"The outbound port check itself failed ({type(exc).__name__})."
        return Reachability(fallbacks=(note,), checked=True)
    return Reachability(ports=tuple(ports), fallbacks=tuple(fallbacks(ports, settings)), checked=True)
