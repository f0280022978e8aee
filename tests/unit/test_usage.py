from typing import Any

from daca_kit.core.models import Backend
from daca_kit.core.usage import GEMINI_OWN, GEMINI_UNSET, QUOTAS, RU_PER_STATEMENT, usage_report


def kit(backends: dict[str, Backend], calls: dict[str, int], turns: int) -> tuple[Any, ...]:
    return backends, calls, turns


EMBEDDED = {
    "database": Backend("sqlite", "sqlite", "SQLite", embedded=True),
    "counters": Backend("sql", "sql", "SQL", embedded=True),
    "events": Backend("in-process", "in-process", "in-process", embedded=True),
    "model": Backend("offline", "offline", "offline", embedded=True),
}
REAL = {
    "database": Backend("postgres", "postgresql://h/db", "PostgreSQL"),
    "counters": Backend("redis", "rediss://x.upstash.io:6379", "Redis"),
    "events": Backend("rabbitmq", "amqps://h:5671/v", "RabbitMQ"),
    "model": Backend("gemini", "gemini:m", "Gemini"),
}


def test_embedded_parts_have_no_quota_and_count_plain_calls() -> None:
    report = usage_report(*kit(EMBEDDED, {"database": 50, "counters": 0, "events": 10, "model": 10}, 10))
    assert report["sustainable_turns_per_day"] is None
    database = next(r for r in report["services"] if r["service"] == "database")
    assert (database["used"], database["unit"], database["calls"], database["per_turn"]) == (
        50,
        "statements",
        50,
        5,
    )


def test_real_services_are_metered_in_billing_units_and_the_first_to_run_out_is_named() -> None:
    calls = {"database": 50, "counters": 20, "events": 10, "model": 10}
    report = usage_report(*kit(REAL, calls, 10), gemini_requests_per_day=250)
    rows = {r["service"]: r for r in report["services"]}
    assert rows["database"]["used"] == 50 * RU_PER_STATEMENT
    assert rows["events"]["used"] == 20  # a message in and a message out
    # The Gemini figure is the user's own, and the meter says so.
    assert rows["model"]["free_tier"] == GEMINI_OWN and "GEMINI_REQUESTS_PER_DAY" in GEMINI_OWN
    assert rows["model"]["quota_per_day"] == 250 and rows["model"]["turns_per_day"] == 250
    assert report["bottleneck"] == "model"
    assert report["sustainable_turns_per_day"] == 250
    assert "model runs out first" in report["note"]


def test_gemini_without_the_users_own_figure_is_counted_against_nothing() -> None:
    calls = {"database": 50, "counters": 20, "events": 10, "model": 10}
    report = usage_report(*kit(REAL, calls, 10))
    rows = {r["service"]: r for r in report["services"]}
    model = rows["model"]
    assert model["free_tier"] == GEMINI_UNSET and model["calls"] == 10
    assert model["quota_per_day"] is None and model["turns_per_day"] is None
    assert "AI Studio" in model["where_to_check"]
    assert report["bottleneck"] != "model" and report["sustainable_turns_per_day"] is not None
    assert "set GEMINI_REQUESTS_PER_DAY" in report["note"]
    offline = usage_report(*kit(EMBEDDED, calls, 10))
    assert next(r for r in offline["services"] if r["service"] == "model")["free_tier"] is None
    assert "model" not in QUOTAS  # no made-up Gemini figure


def test_before_the_first_turn_the_design_figures_are_used() -> None:
    report = usage_report(*kit(REAL, {"database": 0, "counters": 0, "events": 0, "model": 0}, 0))
    counters = next(r for r in report["services"] if r["service"] == "counters")
    assert counters["per_turn"] == 2 and counters["turns_per_day"] == int(QUOTAS["counters"].per_day / 2)
