"""What notebook 03 checks beyond the REST API: that a deployment uses the services its `.env` names,
the stored rows and counters read directly, and the usage against the free tiers as a chart and alerts.

    backends = backend_settings(read_env(env_file), DATABASE_URL="")  # a parameter, else the .env's value
    unused_services(health, backends)                  # sentences: .env names Postgres, /health says SQLite
    alice, bob, run = run_users("")                     # alice-<run>, bob-<run>: nobody else's counts touched
    stored_turns(database_url, bob)                    # SELECT ... FROM conversation WHERE user_id = :bob
    stored_count(bob, redis_url=redis_url)             # GET message_count:<bob>
    fig = plot_usage(client.usage().json())            # one bar per service: % of its daily free quota
    quota_alerts(report, threshold=80)                 # sentences for services near their quota
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from daca_kit.core.analytics import COUNT_KEY
from daca_kit.settings import SERVICE_SETTINGS

# The settings that name the app's services: what a deployment must be seen using in /health.
BACKEND_SETTINGS = ("DATABASE_URL", *SERVICE_SETTINGS, "DACA_RUNTIME")


def backend_settings(saved: Mapping[str, str], **parameters: str | None) -> dict[str, str]:
    """The app's service settings: each parameter given, else the `.env`'s value (empty: embedded)."""
    chosen = {name: saved.get(name, "") for name in BACKEND_SETTINGS if saved.get(name)}
    chosen.update({name: str(value) for name, value in parameters.items() if value})
    return chosen


def run_users(run_id: str = "") -> tuple[str, str, str]:
    """(alice-<run>, bob-<run>, run): this run's users, so a live deployment's other users stay as they are."""
    run = run_id or secrets.token_hex(3)
    return f"alice-{run}", f"bob-{run}", run


def expected_kinds(settings: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    """Which backend kinds /health must show for the services `settings` name ({} for embedded parts)."""
    return {part: kinds for part, (kinds, _setting) in _expected(settings).items()}


def _expected(settings: Mapping[str, str]) -> dict[str, tuple[tuple[str, ...], str]]:
    """{part: (the kinds /health may show, the setting that names the service)}."""
    from daca_kit.adapters.sql import backend_kind

    expected: dict[str, tuple[tuple[str, ...], str]] = {}
    database = settings.get("DATABASE_URL") or settings.get("DB_CONNECTION") or ""
    if database and backend_kind(database) != "sqlite":
        expected["database"] = ((backend_kind(database),), "DATABASE_URL")
    if settings.get("DACA_RUNTIME", "").strip().lower() == "dapr":
        expected["counters"] = (("dapr-state",), "DACA_RUNTIME")
        expected["events"] = (("dapr-pubsub",), "DACA_RUNTIME")
    else:
        if settings.get("UPSTASH_REDIS_REST_URL") and settings.get("UPSTASH_REDIS_REST_TOKEN"):
            expected["counters"] = (("upstash-rest",), "UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN")
        elif settings.get("REDIS_URL"):
            expected["counters"] = (("redis",), "REDIS_URL")
        if settings.get("AMQP_URL"):
            expected["events"] = (("rabbitmq",), "AMQP_URL")
    if settings.get("GEMINI_API_KEY"):
        expected["model"] = (("gemini",), "GEMINI_API_KEY")
    return expected


def unused_services(health: Mapping[str, Any], settings: Mapping[str, str]) -> list[str]:
    """One sentence per service the settings name that /health shows the app is not using."""
    problems = []
    backends = health.get("backends") or {}
    for part, (kinds, setting) in _expected(settings).items():
        kind = (backends.get(part) or {}).get("kind")
        if kind not in kinds:
            problems.append(
                f"{setting} names {' or '.join(kinds)} for the {part}, but /health says the app uses "
                f"{kind or 'nothing'}: set {setting} in the Space's secrets (Settings > Variables and secrets) "
                "and restart the Space."
            )
    return problems


def health_table(health: Mapping[str, Any]) -> str:
    """/health as lines: each part, its kind, where it runs, ok or the error; then the probed ports."""
    lines = []
    for part, state in (health.get("backends") or {}).items():
        verdict = "ok" if state.get("ok") else f"FAILING: {state.get('error', '')}"
        lines.append(f"{part:<9} {str(state.get('kind') or ''):<13} {state.get('backend', '')}  {verdict}")
    reach = health.get("reachability") or {}
    if not reach.get("checked"):
        lines.append("outbound ports: not checked yet (the app checks them in the background at start)")
    for port in reach.get("ports") or []:
        state = "open" if port["open"] else f"CLOSED ({port['detail']})"
        lines.append(f"port {port['host']}:{port['port']} ({port['setting']}) {state}")
    return "\n".join(lines)


def stored_turns(database_url: str, user_id: str, limit: int = 5) -> list[dict[str, Any]]:
    """The user's newest rows of table `conversation`, read with plain SQL (newest first)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    from daca_kit.adapters.sql import normalize_url

    engine = create_engine(normalize_url(database_url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT id, user_id, message, reply, timestamp FROM conversation "
                    "WHERE user_id = :user_id ORDER BY id DESC LIMIT :limit"
                ),
                {"user_id": user_id, "limit": limit},
            )
            return [dict(row._mapping) for row in rows]
    finally:
        engine.dispose()


def stored_count(
    user_id: str,
    *,
    redis_url: str | None = None,
    upstash_rest_url: str | None = None,
    upstash_rest_token: str | None = None,
    database_url: str | None = None,
) -> int | None:
    """`message_count:{user_id}` read where the app keeps it: Redis, Upstash REST, else the SQL database."""
    key = COUNT_KEY.format(user_id)
    if upstash_rest_url and upstash_rest_token:
        from upstash_redis import Redis as UpstashRedis

        value = UpstashRedis(url=upstash_rest_url, token=upstash_rest_token).get(key)
        return int(value) if value is not None else None
    if redis_url:
        import redis

        client = redis.Redis.from_url(redis_url, socket_timeout=10, decode_responses=True)
        try:
            raw = client.get(key)
        finally:
            client.close()
        return int(raw) if raw is not None else None
    if database_url:
        from daca_kit.adapters.sql import SqlCounters, SqlDatabase

        db = SqlDatabase(database_url)
        try:
            return SqlCounters(db).get(user_id)
        finally:
            db.close()
    return None


def usage_table(report: dict[str, Any]) -> str:
    """GET /usage as a fixed-width table: use so far, per turn, daily free quota, turns a day it allows."""
    lines = [
        f"{'service':<9} {'backend':<28} {'used':>9} {'per turn':>9} {'quota/day':>11} {'% used':>7} {'turns/day':>10}"
    ]
    for r in report.get("services", []):
        quota = f"{r['quota_per_day']:,}" if r["quota_per_day"] is not None else "-"
        percent = f"{r['percent_of_daily_quota']:g}" if r["percent_of_daily_quota"] is not None else "-"
        turns = f"{r['turns_per_day']:,}" if r["turns_per_day"] is not None else "-"
        lines.append(
            f"{r['service']:<9} {str(r['backend'])[:28]:<28} {r['used']:>9g} {r['per_turn']:>9g} {quota:>11} "
            f"{percent:>7} {turns:>10}"
        )
    lines.append(str(report.get("note", "")))
    return "\n".join(lines)


def probe_rate_limit(client: Any, user_id: str, most: int) -> tuple[int, Any]:
    """Sends short messages as `user_id` until the app answers 429 or `most` were sent.

    Returns (messages answered 200, the 429 response or None). Each accepted message is a real turn.
    """
    accepted = 0
    for number in range(1, most + 1):
        response = client.chat(user_id, f"rate limit probe {number}", wait=0)
        if response.status_code == 429:
            return accepted, response
        if response.status_code in (200, 202):
            accepted += 1
        else:
            raise AssertionError(f"POST /chat/ answered {response.status_code}: {response.text[:200]}")
    return accepted, None


def quota_alerts(report: dict[str, Any], threshold: float = 80.0) -> list[str]:
    """One sentence per metered service that used `threshold` percent or more of its daily free quota."""
    alerts = []
    for row in report.get("services", []):
        percent = row.get("percent_of_daily_quota")  # None: embedded, or no daily figure to count against
        if percent is not None and percent >= threshold:
            alerts.append(
                f"{row['free_tier']}: {percent:g}% of the daily share of its free quota is used "
                f"({row['used']:g} of {row['quota_per_day']:g} {row['unit']}); check {row['where_to_check']}."
            )
    return alerts


def plot_usage(report: dict[str, Any]) -> Any:
    """A bar chart of GET /usage: each service's use as a percent of its daily free quota (embedded: none)."""
    import matplotlib.pyplot as plt

    rows = report.get("services", [])
    names = [f"{r['service']}\n({r['backend']})" for r in rows]
    percents = [r["percent_of_daily_quota"] or 0.0 for r in rows]
    fig, ax = plt.subplots(figsize=(7, 0.7 * max(len(rows), 1) + 1.2))
    bars = ax.barh(names, percents, color=["tab:blue" if r["free_tier"] else "tab:gray" for r in rows])
    for bar, row in zip(bars, rows, strict=True):
        if row["free_tier"] and row["percent_of_daily_quota"] is None:
            label = f" {row['used']:g} {row['unit']}; {row['free_tier']}"
        elif row["free_tier"]:
            label = f" {row['percent_of_daily_quota']:g}% of {row['quota_per_day']:,} {row['unit']}/day"
        else:
            label = f" embedded: no free-tier quota ({row['used']:g} {row['unit']} so far)"
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, label, va="center", fontsize=8)
    ax.set_xlim(0, max(100.0, *percents) * 1.6 if percents else 100.0)
    ax.set_xlabel("percent of the daily free quota used")
    limit = report.get("sustainable_turns_per_day")
    ax.set_title(
        f"Free tiers allow about {limit:,} chat turns a day"
        if limit
        else "All parts embedded: no free-tier quota applies"
    )
    ax.invert_yaxis()
    fig.tight_layout()
    return fig
