"""The free-tier meter: backend calls so far against each service's free quota, and how many chat turns
a day the current configuration can sustain.

    report = usage_report(kit.backends, kit.backend_calls(), kit.turns_completed,
                          gemini_requests_per_day=settings.gemini_requests_per_day)   # also GET /usage

The counters, events and database quotas are the providers' published free-tier figures (checked for
the kit's release; providers change them, so each entry names where to look). Gemini publishes no fixed
free-tier figure: its rate-limits page (ai.google.dev/gemini-api/docs/rate-limits) says limits vary by
model and are applied per project, and sends you to AI Studio to see yours. So the model is metered
against the user's own figure, `GEMINI_REQUESTS_PER_DAY`, labelled as such, and is left out of the
sustainable-turns estimate while that setting is unset. Per-turn costs are measured from the calls this
process has made, or taken from the kit's design figures before the first turn.
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


GEMINI_SOURCE = "Google AI Studio > Usage and rate limits (per model and project)"
GEMINI_UNSET = "Gemini API: no daily figure (set GEMINI_REQUESTS_PER_DAY to your limit from AI Studio)"
GEMINI_OWN = "Gemini API: your own limit (GEMINI_REQUESTS_PER_DAY)"
SERVICES = ("model", "counters", "events", "database")

# Published free-tier quotas, per day (monthly quotas divided by 30). The model's is the user's own.
QUOTAS: dict[str, Quota] = {
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


def model_quota(requests_per_day: int | None) -> Quota | None:
    """The Gemini quota from the user's own GEMINI_REQUESTS_PER_DAY; None while it is unset."""
    if requests_per_day is None:
        return None
    return Quota(GEMINI_OWN, "requests", requests_per_day, GEMINI_SOURCE)


def usage_report(
    backends: Mapping[str, Backend],
    calls: Mapping[str, int],
    turns: int,
    *,
    gemini_requests_per_day: int | None = None,
) -> dict[str, Any]:
    """Each service's use against its free quota, and the chat turns a day the quotas allow."""
    rows: list[dict[str, Any]] = []
    sustainable: list[tuple[float, str]] = []
    quotas = {**QUOTAS, "model": model_quota(gemini_requests_per_day)}
    for key in SERVICES:
        quota = quotas[key]
        backend = backends[key]
        real = not backend.embedded
        if quota is None and real:
            rows.append(_unmetered(key, backend, calls, turns))
            continue
        if quota is None:  # the offline model: embedded, so no quota is read below
            quota = Quota(GEMINI_UNSET, "requests", 1.0, GEMINI_SOURCE)
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
    unmetered = [r["service"] for r in rows if r["free_tier"] == GEMINI_UNSET]
    limit = int(fewest[0]) if fewest else None
    bottleneck = fewest[1] if fewest else None
    return {
        "turns_completed": turns,
        "services": rows,
        "sustainable_turns_per_day": limit,
        "bottleneck": bottleneck,
        "note": _note(limit, bottleneck, unmetered),
    }


def _note(limit: int | None, bottleneck: str | None, unmetered: list[str]) -> str:
    if limit is None and not unmetered:
        return "All parts run embedded: no free-tier quota applies."
    parts = []
    if limit is not None:
        parts.append(f"The free tiers allow about {limit} chat turns a day; {bottleneck} runs out first.")
    if unmetered:
        parts.append(
            "Gemini is not counted: set GEMINI_REQUESTS_PER_DAY to your own daily limit, shown in AI Studio."
        )
    return " ".join(parts)


def _unmetered(key: str, backend: Backend, calls: Mapping[str, int], turns: int) -> dict[str, Any]:
    """A real Gemini model whose daily figure the user has not given: counted, but against nothing."""
    raw = float(calls.get(key, 0))
    return {
        "service": key,
        "backend": backend.label,
        "free_tier": GEMINI_UNSET,
        "unit": "requests",
        "calls": int(raw),
        "used": raw,
        "per_turn": round(raw / turns if turns else NOMINAL_PER_TURN[key], 2),
        "quota_per_day": None,
        "percent_of_daily_quota": None,
        "turns_per_day": None,
        "where_to_check": GEMINI_SOURCE,
    }
