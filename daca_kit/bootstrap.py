"""The composition root: the only module that chooses and builds adapters.

    kit = bootstrap(load_settings())                   # real adapters where settings name them
    kit = bootstrap(settings, counters=FakeCounters())  # tests pass their own

Nothing here runs at import time; `Kit.start()` opens connections and starts threads. The builders
(`build_counters`, `build_bus`, `build_model`) are also what `daca-kit doctor` checks.
"""

from __future__ import annotations

import logging

from daca_kit.adapters.inprocess import InProcessEventBus
from daca_kit.adapters.local_runtime import LocalRuntime
from daca_kit.adapters.offline import OfflineReplyModel
from daca_kit.adapters.sql import SqlCounters, open_stores
from daca_kit.core.activities import TurnActivities
from daca_kit.core.kit import Kit
from daca_kit.core.models import InstanceState
from daca_kit.core.ports import (
    Counters,
    EventBus,
    PushedEvents,
    RateWindows,
    ReplyModel,
    Stores,
    WorkflowRuntime,
)
from daca_kit.core.ratelimit import LocalRateLimiter, RateLimiter, SharedRateLimiter
from daca_kit.core.workflow import WORKFLOW_NAME, chat_turn
from daca_kit.settings import Settings, load_settings

log = logging.getLogger(__name__)


def build_counters(settings: Settings, stores: Stores) -> tuple[Counters, RateWindows | None]:
    """The counters the settings name, and the shared rate windows they offer (None: per process)."""
    if settings.runtime == "dapr":
        from daca_kit.adapters.dapr.state import DaprCounters

        return DaprCounters.from_settings(settings), None
    if settings.upstash_redis_rest_url and settings.upstash_redis_rest_token:
        from daca_kit.adapters.upstash import UpstashCounters

        upstash = UpstashCounters.from_rest(
            settings.upstash_redis_rest_url, settings.upstash_redis_rest_token.get_secret_value()
        )
        return upstash, upstash
    if settings.redis_url is not None:
        from daca_kit.adapters.redis import RedisCounters

        redis_counters = RedisCounters.from_url(settings.redis_url.get_secret_value())
        return redis_counters, redis_counters
    from daca_kit.adapters.sql import SqlDatabase

    if not isinstance(stores.database, SqlDatabase):
        raise TypeError("the embedded counters live in the SQL database: pass counters with other stores")
    return SqlCounters(stores.database), None


def build_bus(settings: Settings) -> tuple[EventBus, PushedEvents | None]:
    """The event bus the settings name, and the same bus when its broker pushes events over HTTP."""
    if settings.runtime == "dapr":
        from daca_kit.adapters.dapr.pubsub import DaprEventBus

        dapr_bus = DaprEventBus.from_settings(settings)
        return dapr_bus, dapr_bus
    if settings.amqp_url is not None:
        from daca_kit.adapters.rabbitmq import PikaEventBus

        return PikaEventBus(settings.amqp_url.get_secret_value()), None
    return InProcessEventBus(), None


def build_model(settings: Settings) -> ReplyModel:
    if settings.gemini_api_key is not None:
        from daca_kit.adapters.gemini import GeminiReplyModel

        return GeminiReplyModel(
            settings.gemini_api_key.get_secret_value(),
            settings.gemini_model,
            base_url=settings.gemini_base_url,
            timeout=settings.gemini_timeout,
        )
    return OfflineReplyModel(delay=settings.offline_delay)


def build_runtime(settings: Settings, stores: Stores, activities: TurnActivities) -> WorkflowRuntime:
    if settings.runtime == "dapr":
        from daca_kit.adapters.dapr.workflow import DaprWorkflowRuntime

        return DaprWorkflowRuntime.from_settings(
            settings, workflows={WORKFLOW_NAME: chat_turn}, activities=activities.as_dict()
        )
    return LocalRuntime(
        stores.workflows,
        workflows={WORKFLOW_NAME: chat_turn},
        activities=activities.as_dict(),
        recoverable=completed_turn,
    )


def completed_turn(state: InstanceState) -> bool:
    """A turn that completed without waiting is recoverable from its `conversation` row."""
    return state.name == WORKFLOW_NAME and (state.output or {}).get("status") == "completed"


def bootstrap(
    settings: Settings | None = None,
    *,
    store: Stores | None = None,
    counters: Counters | None = None,
    bus: EventBus | None = None,
    llm: ReplyModel | None = None,
    runtime: WorkflowRuntime | None = None,
) -> Kit:
    """Builds a Kit from settings; any port passed in is used as given."""
    settings = settings or load_settings()
    stores = store or open_stores(settings.database_url, timeout=settings.db_timeout)
    windows: RateWindows | None = None
    if counters is None:
        counters, windows = build_counters(settings, stores)
    else:
        from daca_kit.adapters.redis import KeyValueCounters

        windows = counters if isinstance(counters, KeyValueCounters) else None
    pushed: PushedEvents | None = None
    if bus is None:
        bus, pushed = build_bus(settings)
    elif settings.runtime == "dapr":
        from daca_kit.adapters.dapr.pubsub import DaprEventBus

        pushed = bus if isinstance(bus, DaprEventBus) else None
    model = llm or build_model(settings)

    limit, window = settings.rate
    limiter: RateLimiter = (
        SharedRateLimiter(windows, limit, window) if windows is not None else LocalRateLimiter(limit, window)
    )
    activities = TurnActivities(
        conversations=stores.conversations, reviews=stores.reviews, counters=counters, model=model
    )
    return Kit(
        settings=settings,
        stores=stores,
        counters=counters,
        bus=bus,
        model=model,
        runtime=runtime or build_runtime(settings, stores, activities),
        limiter=limiter,
        activities=activities,
        pushed_events=pushed,
    )
