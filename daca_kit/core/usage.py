"""The free-tier meter: backend calls so far against each service's free quota, and how many chat turns
a day the current configuration can sustain.

    report = usage_report(kit.backends, kit.backend_calls(), kit.turns_completed)   # also GET /usage

Quotas are the providers' published free-tier figures (checked for the kit's release; providers change
them, so each entry names where to look). Per-turn costs are measured from the calls this process has
made, or taken from the kit's design figures before the first turn.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from daca_kit.core.models import Backend


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


def usage_report(backends: Mapping[str, Backend], calls: Mapping[str, int], turns: int) -> dict[str, Any]:
    """Each service's use against its free quota, and the chat turns a day the quotas allow."""
    rows: list[dict[str, Any]] = []
    sustainable: list[tuple[float, str]] = []
    for key, quota in QUOTAS.items():
        backend = backends[key]
        real = not backend.embedded
        raw = float(calls.get(key, 0))
        # A real service is metered in its provider's billing unit; an embedded part in plain calls.
        scale = BILLING_SCALE[key] if real else 1.0
        used = raw * scale
        per_turn = used / turns if turns else NOMINAL_PER_TURN[key] * scale
        turns_per_day = quota.per_day / per_turn if real and per_turn > 0 else None
        if turns_per_day is not None:
            sustainable.append((turns_per_day, key))
        rows.append(
            {
                "service": key,
                "backend": backend.label,
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
    fewest = min(sustainable, default=None)
    limit = int(fewest[0]) if fewest else None
    bottleneck = fewest[1] if fewest else None
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
