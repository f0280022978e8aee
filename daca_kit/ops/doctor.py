"""`daca-kit doctor`: one harmless round trip to every configured backend, with latency, and on failure
one sentence that says what is wrong and which setting to fix (never a secret); then which outbound
ports of the configured hosts open from here, and what to change where one is closed.

    results = run_checks(settings)                 # database, counters, events, model
    ports = outbound_ports(settings=settings)      # which outbound ports of the configured hosts are open
    print(format_report(results, ports, fallbacks(ports, settings)))
    exit_code = main(settings)                     # what the CLI runs: 0 all ok or embedded, 1 a failure

The checks live in `daca_kit.ops.checks` (each asks the adapter for its own round trip and sentence),
the port probes and fallbacks in `daca_kit.adapters.outbound` (the running app makes the same check at
start); this module re-exports them, so `doctor.check_model(settings)` reads as before.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from daca_kit.adapters.outbound import STANDARD_PORTS, PortTarget, fallbacks, outbound_ports, port_targets
from daca_kit.core.models import PortCheck
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
