"""The free-tier meter: backend calls so far against each service's free quota, and how many chat turns
a day the current configuration can sustain.

    report = usage_report(kit)   # also GET /usage

Quotas are the providers' published free-tier figures (checked for the kit's release; providers change
them, so each entry names where to look). Per-turn costs are measured from the calls this process has
made, or taken from the kit's design figures before the first turn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Quota:
    service: str
    unit: str
    per_day: float
    source: str


# Free-tier quotas, per day (monthly quotas divided by 30).
QUOTAS: dict[str, Quota] = {
    "model": Quota(
        "Gemini API (free tier)", "requests", 250, "Google AI Studio > Usage and rate limits (per model)"
    ),
    "counters": Quota("Upstash Redis (free)", "commands", 500_000 / 30, "Upstash console > database > Usage"),
    "events": Quota(
        "CloudAMQP Little Lemur", "messages", 1_000_000 / 30, "CloudAMQP console > instance > Overview"
    ),
    "database": Quota(
        "CockroachDB Basic (free)",
        "request units",
        50_000_000 / 30,
        "CockroachDB Cloud console > cluster > Usage",
    ),
}

# What one chat turn costs when nothing has been measured yet (the kit's design figures).
NOMINAL_PER_TURN = {"model": 1.0, "counters": 2.0, "events": 1.0, "database": 5.0}
# CockroachDB bills request units, not statements; small point reads and writes cost a few RUs.
RU_PER_STATEMENT = 3.0
# Billing units per backend call: CloudAMQP counts a message in and a message out; RUs per statement.
BILLING_SCALE = {"model": 1.0, "counters": 1.0, "events": 2.0, "database": RU_PER_STATEMENT}
RAW_UNITS = {"model": "calls", "counters": "commands", "events": "publishes", "database": "statements"}


def usage_report(kit: Any) -> dict[str, Any]:
    calls = kit.backend_calls()
    turns = kit.turns_completed
    rows = []
    sustainable: list[float] = []
    for key, quota in QUOTAS.items():
        backend = kit.backends.get(key, "embedded")
        real = _is_metered(key, backend)
        raw = float(calls.get(key, 0))
        # A real service is metered in its provider's billing unit; an embedded part in plain calls.
        scale = BILLING_SCALE[key] if real else 1.0
        used = raw * scale
        per_turn = used / turns if turns else NOMINAL_PER_TURN[key] * scale
        turns_per_day = quota.per_day / per_turn if real and per_turn > 0 else None
        if turns_per_day is not None:
            sustainable.append(turns_per_day)
        rows.append(
            {
                "service": key,
                "backend": backend,
                "free_tier": quota.service if real else None,
                "unit": quota.unit if real else RAW_UNITS[key],
                "calls": int(raw),
                "used": round(used, 1),
                "per_turn": round(per_turn, 2),
                "quota_per_day": round(quota.per_day) if real else None,
                "percent_of_daily_quota": round(100 * used / quota.per_day, 2) if real else None,
                "turns_per_day": int(turns_per_day) if turns_per_day is not None else None,
                "where_to_check": quota.source if real else None,
            }
        )
    limit = int(min(sustainable)) if sustainable else None
    bottleneck = None
    if sustainable:
        bottleneck = min(
            (r for r in rows if r["turns_per_day"] is not None), key=lambda r: r["turns_per_day"]
        )["service"]
    return {
        "turns_completed": turns,
        "services": rows,
        "sustainable_turns_per_day": limit,
        "bottleneck": bottleneck,
        "note": (
            "All parts run embedded: no free-tier quota applies."
            if limit is None
            else f"The free tiers allow about {limit} chat turns a day; {bottleneck} runs out first."
        ),
    }


EMBEDDED = {"sqlite", "sql", "in-process", "offline", "embedded"}


def _is_metered(key: str, backend: str) -> bool:
    """A real service counts against its free tier (a local Redis stands in for Upstash, and so on)."""
    if key == "model":
        return backend.startswith("gemini")
    return backend.split(":", 1)[0] not in EMBEDDED
