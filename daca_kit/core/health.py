"""What `GET /health` reports: each backend's state, and the warnings a deployer should read.

    report = backend_health(kit.backends, pings={"database": db.ping, "counters": counters.ping},
                            model_error=None, relay_error=None)      # {"status", "degraded", "backends"}
    notes = health_warnings(settings, kit.backends, kit.reachability)

Each backend entry names where it runs (`backend`, a label without credentials) and which kind of
service it is (`kind`: sqlite, postgres, redis, upstash-rest, rabbitmq, gemini, ...), so a deployment
can be checked against the services its settings name. The database, the counters and the workflow
runtime are pinged (a ping costs at most one free-tier call); the model is judged by its latest reply and
the event bus by the outbox relay's latest publish, so /health never spends Gemini quota.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from daca_kit.core.models import Backend, Reachability
from daca_kit.errors import BackendError
from daca_kit.settings import Settings


def backend_health(
    backends: Mapping[str, Backend],
    *,
    pings: Mapping[str, Callable[[], None]],
    model_error: str | None,
    relay_error: str | None,
) -> dict[str, Any]:
    """Each part's state: pinged parts by their ping, the model and events by their latest outcome."""
    parts: dict[str, Any] = {name: _probe(backends[name], ping) for name, ping in pings.items()}
    parts["model"] = {
        **_named(backends["model"]),
        "ok": model_error is None,
        "checked": "by the latest reply",
        **({"error": model_error} if model_error else {}),
    }
    parts["events"] = {
        **_named(backends["events"]),
        "ok": relay_error is None,
        **({"error": relay_error} if relay_error else {}),
    }
    degraded = [k for k, v in parts.items() if not v.get("ok")]
    return {"status": "healthy" if not degraded else "degraded", "degraded": degraded, "backends": parts}


def health_warnings(settings: Settings, backends: Mapping[str, Backend], reach: Reachability) -> list[str]:
    """Sentences for the deployer: SQLite on a Space, the offline model, ports closed from here."""
    notes = []
    if settings.on_space and backends["database"].kind == "sqlite":
        notes.append(
            "This Space stores conversations in SQLite on disk that Spaces do not keep across restarts: "
            "set DATABASE_URL to CockroachDB or Postgres."
        )
    if settings.web_concurrency > 1 and settings.runtime == "local" and settings.redis_url is None:
        notes.append(
            f"WEB_CONCURRENCY={settings.web_concurrency} without REDIS_URL: a worker learns of a review decided "
            "in another worker by re-reading the database every second; set REDIS_URL (Redis pub/sub wakes "
            "the others at once)."
        )
    if backends["model"].kind == "offline":
        notes.append("Replies come from the offline model: set GEMINI_API_KEY for Gemini replies.")
    notes.extend(reach.fallbacks)
    return notes


def _named(backend: Backend) -> dict[str, Any]:
    """What serves a part: where (`backend`), and which kind of service (`kind`)."""
    return {"backend": backend.label, "kind": backend.kind}


def _probe(backend: Backend, probe: Callable[[], None]) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        probe()
    except BackendError as exc:
        return {**_named(backend), "ok": False, "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - health must report, not raise
        return {**_named(backend), "ok": False, "error": f"{type(exc).__name__}"}
    return {**_named(backend), "ok": True, "latency_ms": round((time.perf_counter() - start) * 1000, 1)}
