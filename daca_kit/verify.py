"""What notebook 03 checks beyond the REST API: the stored rows and counters read directly, and the
usage against the free tiers as a chart and as alerts.

    stored_turns(database_url, "bob")                  # SELECT ... FROM conversation WHERE user_id = 'bob'
    stored_count("bob", redis_url=redis_url)           # GET message_count:bob
    fig = plot_usage(client.usage().json())            # one bar per service: % of its daily free quota
    quota_alerts(report, threshold=80)                 # sentences for services near their quota
"""

from __future__ import annotations

from typing import Any

COUNT_KEY = "message_count:{}"


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
        from daca_kit.adapters.sql import SqlCounters, SqlStore

        store = SqlStore(database_url)
        try:
            return SqlCounters(store).get(user_id)
        finally:
            store.close()
    return None


def quota_alerts(report: dict[str, Any], threshold: float = 80.0) -> list[str]:
    """One sentence per metered service that used `threshold` percent or more of its daily free quota."""
    alerts = []
    for row in report.get("services", []):
        percent = row.get("percent_of_daily_quota")
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
        if row["free_tier"]:
            label = f" {row['percent_of_daily_quota']:g}% of {row['quota_per_day']:,} {row['unit']}/day"
        else:
            label = f" embedded: no free-tier quota ({row['used']:g} {row['unit']} so far)"
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, label, va="center", fontsize=8)
    ax.set_xlim(0, max(100.0, *percents) * 1.6 if percents else 100.0)
    ax.set_xlabel("percent of the daily free quota used")
    limit = report.get("sustainable_turns_per_day")
    ax.set_title(
        f"Free tiers allow about {limit:,} chat turns a day" if limit else "All parts embedded: no free-tier quota applies"
    )
    ax.invert_yaxis()
    fig.tight_layout()
    return fig
