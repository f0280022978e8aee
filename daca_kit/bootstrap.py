"""The composition root: the only module that chooses and builds adapters.

    kit = bootstrap(load_settings())                   # real adapters where settings name them
    kit = bootstrap(settings, counters=FakeCounters())  # tests pass their own

Nothing here runs at import time; `Kit.start()` opens connections and starts threads.
"""

from __future__ import annotations

import logging
from typing import Any

from daca_kit.adapters.inprocess import InProcessEventBus
from daca_kit.adapters.offline import OfflineReplyModel
from daca_kit.adapters.sql import SqlCounters, SqlStore, backend_kind, describe_url
from daca_kit.kit import Kit
from daca_kit.ports import Counters, EventBus, ReplyModel
from daca_kit.ratelimit import LocalRateLimiter, SharedRateLimiter
from daca_kit.runtime import LocalRuntime
from daca_kit.settings import Settings, load_settings
from daca_kit.workflow import WORKFLOW_NAME, TurnActivities, chat_turn

log = logging.getLogger(__name__)


def build_counters(settings: Settings, store: SqlStore) -> tuple[Counters, str]:
    if settings.runtime == "dapr":
        from daca_kit.adapters.dapr import DaprCounters

        return DaprCounters.from_settings(settings), f"dapr-state:{settings.dapr_statestore}"
    if settings.upstash_redis_rest_url and settings.upstash_redis_rest_token:
        from daca_kit.adapters.upstash import UpstashCounters

        counters = UpstashCounters.from_rest(
            settings.upstash_redis_rest_url, settings.upstash_redis_rest_token.get_secret_value()
        )
        return counters, counters.label
    if settings.redis_url is not None:
        from daca_kit.adapters.redis import RedisCounters

        redis_counters = RedisCounters.from_url(settings.redis_url.get_secret_value())
        return redis_counters, redis_counters.label
    return SqlCounters(store), "sql"


def build_bus(settings: Settings) -> tuple[EventBus, str]:
    if settings.runtime == "dapr":
        from daca_kit.adapters.dapr import DaprEventBus

        return DaprEventBus.from_settings(settings), f"dapr-pubsub:{settings.dapr_pubsub}"
    if settings.amqp_url is not None:
        from daca_kit.adapters.rabbitmq import PikaEventBus

        bus = PikaEventBus(settings.amqp_url.get_secret_value())
        return bus, bus.label
    return InProcessEventBus(), "in-process"


def build_model(settings: Settings) -> tuple[ReplyModel, str]:
    if settings.gemini_api_key is not None:
        from daca_kit.adapters.gemini import GeminiReplyModel

        model = GeminiReplyModel(
            settings.gemini_api_key.get_secret_value(),
            settings.gemini_model,
            base_url=settings.gemini_base_url,
            timeout=settings.gemini_timeout,
        )
        return model, model.name
    return OfflineReplyModel(), "offline"


def completed_turn(state: Any) -> bool:
    """A turn that completed without waiting is recoverable from its `conversation` row."""
    return state.name == WORKFLOW_NAME and (state.output or {}).get("status") == "completed"


def bootstrap(
    settings: Settings | None = None,
    *,
    store: Any = None,
    counters: Counters | None = None,
    bus: EventBus | None = None,
    llm: ReplyModel | None = None,
    runtime: Any = None,
) -> Kit:
    """Builds a Kit from settings; any port passed in is used as given."""
    settings = settings or load_settings()
    backends: dict[str, str] = {}
    if store is None:
        store = SqlStore(settings.database_url)
    backends["database"] = backend_kind(getattr(store, "url", "sqlite://"))
    backends["database_url"] = describe_url(getattr(store, "url", "sqlite://"))
    if counters is None:
        counters, backends["counters"] = build_counters(settings, store)
    else:
        backends["counters"] = getattr(counters, "label", getattr(counters, "name", "custom"))
    if bus is None:
        bus, backends["events"] = build_bus(settings)
    else:
        backends["events"] = getattr(bus, "label", getattr(bus, "name", "custom"))
    if llm is None:
        llm, backends["model"] = build_model(settings)
    else:
        backends["model"] = getattr(llm, "name", "custom")

    limit, window = settings.rate
    shared = backends["counters"] != "sql" and hasattr(counters, "hit")
    limiter = SharedRateLimiter(counters, limit, window) if shared else LocalRateLimiter(limit, window)

    activities = TurnActivities(store=store, counters=counters, model=llm)
    if runtime is None:
        if settings.runtime == "dapr":
            from daca_kit.adapters.dapr import DaprWorkflowRuntime

            runtime = DaprWorkflowRuntime.from_settings(
                settings, workflows={WORKFLOW_NAME: chat_turn}, activities=activities.as_dict()
            )
        else:
            runtime = LocalRuntime(
                store,
                workflows={WORKFLOW_NAME: chat_turn},
                activities=activities.as_dict(),
                recoverable=completed_turn,
            )
    backends["workflow"] = getattr(runtime, "name", "custom")
    return Kit(
        settings=settings,
        store=store,
        counters=counters,
        bus=bus,
        model=llm,
        runtime=runtime,
        limiter=limiter,
        activities=activities,
        backends=backends,
    )
