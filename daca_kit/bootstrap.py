"""The composition root: the only module that chooses and builds adapters.

    kit = bootstrap(load_settings())                   # real adapters where settings name them
    kit = bootstrap(settings, counters=FakeCounters())  # tests pass their own

Nothing here runs at import time; `Kit.start()` opens connections and starts threads. The builders
choose an adapter from the settings; `service_database`, `service_counters`, `service_bus` and
`service_model` build the real service's adapter the settings name (None for an embedded default), and
`daca-kit doctor` builds them with a short timeout and asks each for its `check()`. `service_reach`
probes the configured services' ports, which the Kit does once at start for /health.
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING, TypedDict

from daca_kit.adapters.inprocess import InProcessEventBus, InProcessReplyChannel, InProcessWakeUps
from daca_kit.adapters.local_runtime import LocalRuntime
from daca_kit.adapters.offline import OfflineReplyModel
from daca_kit.adapters.sql import SqlCounters, SqlDatabase, backend_kind, open_stores
from daca_kit.adapters.sql.database import describe_url
from daca_kit.core.activities import TurnActivities
from daca_kit.core.admission import Admission
from daca_kit.core.kit import Kit
from daca_kit.core.models import InstanceState, Reachability
from daca_kit.core.ports import (
    Counters,
    EventBus,
    PushedEvents,
    RateWindows,
    ReplyModel,
    Stores,
    WakeUps,
    WorkflowRuntime,
)
from daca_kit.core.ratelimit import LocalRateLimiter, RateLimiter, SharedRateLimiter
from daca_kit.core.workflow import EXPOSING_ACTIVITIES, WORKFLOW_NAME, chat_turn
from daca_kit.settings import Settings, load_settings

if TYPE_CHECKING:
    from daca_kit.adapters.gemini import GeminiReplyModel
    from daca_kit.adapters.rabbitmq import PikaEventBus
    from daca_kit.adapters.redis import KeyValueCounters

log = logging.getLogger(__name__)


def build_counters(settings: Settings, stores: Stores) -> tuple[Counters, RateWindows | None]:
    """The counters the settings name, and the shared rate windows they offer (None: per process)."""
    if settings.runtime == "dapr":
        from daca_kit.adapters.dapr.state import DaprCounters

        return DaprCounters.from_settings(settings), None
    service = service_counters(settings)
    if service is not None:
        return service, service
    if not isinstance(stores.database, SqlDatabase):
        raise TypeError("the embedded counters live in the SQL database: pass counters with other stores")
    return SqlCounters(stores.database), None


def build_bus(settings: Settings) -> tuple[EventBus, PushedEvents | None]:
    """The event bus the settings name, and the same bus when its broker pushes events over HTTP."""
    if settings.runtime == "dapr":
        from daca_kit.adapters.dapr.pubsub import DaprEventBus

        dapr_bus = DaprEventBus.from_settings(settings)
        return dapr_bus, dapr_bus
    return service_bus(settings) or InProcessEventBus(), None


def build_model(settings: Settings) -> ReplyModel:
    return service_model(settings) or OfflineReplyModel(
        delay=settings.offline_delay, chunk_delay=settings.offline_chunk_delay
    )


def build_wakeups(settings: Settings) -> WakeUps:
    """How this process hears of steps saved by the app's other processes: Redis pub/sub when REDIS_URL is
    set (one channel per app database); else nobody (one process, or waiters re-check every second)."""
    if settings.redis_url is not None:
        from daca_kit.adapters.redis_pubsub import RedisWakeUps

        return RedisWakeUps.from_url(
            settings.redis_url.get_secret_value(), wake_channel(settings.database_url)
        )
    return InProcessWakeUps(alone=settings.web_concurrency <= 1)


def wake_channel(database_url: str) -> str:
    """The wake-up channel of the app whose state is in `database_url` (its password left out)."""
    digest = hashlib.sha256(describe_url(database_url).encode()).hexdigest()[:20]
    return f"daca:wake:{digest}"


def build_runtime(
    settings: Settings, stores: Stores, activities: TurnActivities, wakeups: WakeUps | None = None
) -> WorkflowRuntime:
    if settings.runtime == "dapr":
        from daca_kit.adapters.dapr.workflow import DaprWorkflowRuntime

        return DaprWorkflowRuntime.from_settings(
            settings,
            workflows={WORKFLOW_NAME: chat_turn},
            activities=activities.as_dict(),
            inbox=stores.workflows,
        )
    return LocalRuntime(
        stores.workflows,
        workflows={WORKFLOW_NAME: chat_turn},
        activities=activities.as_dict(),
        recoverable=completed_turn,
        checkpoint_before=EXPOSING_ACTIVITIES,
        wakeups=wakeups or build_wakeups(settings),
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
    client_limit, client_window = settings.client_rate
    admission = Admission(
        LocalRateLimiter(client_limit, client_window),
        per_client=settings.max_pending_per_client,
        total=settings.max_pending_reviews,
        count_pending=stores.reviews.pending_count,
        max_wait=settings.review_timeout.total_seconds(),
    )
    activities = TurnActivities(
        conversations=stores.conversations,
        reviews=stores.reviews,
        counters=counters,
        model=model,
        replies=InProcessReplyChannel(),  # reply pieces for streaming requests (daca_kit.core.streaming)
    )
    wakeups = build_wakeups(settings) if runtime is None and settings.runtime == "local" else None
    return Kit(
        settings=settings,
        stores=stores,
        counters=counters,
        bus=bus,
        model=model,
        runtime=runtime or build_runtime(settings, stores, activities, wakeups),
        wakeups=wakeups,
        limiter=limiter,
        admission=admission,
        activities=activities,
        pushed_events=pushed,
        reach=lambda: service_reach(settings),
    )


# -- the real services' adapters (each `Checkable`), with the adapters' own timeouts unless given -------------
def service_database(settings: Settings, *, timeout: float | None = None) -> SqlDatabase | None:
    """Postgres or CockroachDB when DATABASE_URL names one; None for the embedded SQLite file."""
    if backend_kind(settings.database_url) == "sqlite":
        return None
    return SqlDatabase(settings.database_url, connect_timeout=timeout, timeout=settings.db_timeout)


def service_counters(settings: Settings, *, timeout: float | None = None) -> KeyValueCounters | None:
    """Upstash (REST) or Redis counters when the settings name one (Upstash first); else None."""
    if settings.upstash_redis_rest_url and settings.upstash_redis_rest_token:
        from daca_kit.adapters.upstash import UpstashCounters

        token = settings.upstash_redis_rest_token.get_secret_value()
        return UpstashCounters.from_rest(settings.upstash_redis_rest_url, token, **_given(timeout))
    if settings.redis_url is not None:
        from daca_kit.adapters.redis import RedisCounters

        return RedisCounters.from_url(settings.redis_url.get_secret_value(), **_given(timeout))
    return None


def service_bus(settings: Settings, *, timeout: float | None = None) -> PikaEventBus | None:
    """RabbitMQ when AMQP_URL is set; else None."""
    if settings.amqp_url is None:
        return None
    from daca_kit.adapters.rabbitmq import PikaEventBus

    return PikaEventBus(settings.amqp_url.get_secret_value(), **_given(timeout))


def service_model(settings: Settings, *, timeout: float | None = None) -> GeminiReplyModel | None:
    """Gemini when GEMINI_API_KEY is set; else None."""
    if settings.gemini_api_key is None:
        return None
    from daca_kit.adapters.gemini import GeminiReplyModel

    return GeminiReplyModel(
        settings.gemini_api_key.get_secret_value(),
        settings.gemini_model,
        base_url=settings.gemini_base_url,
        timeout=timeout or settings.gemini_timeout,
    )


def service_reach(settings: Settings, *, timeout: float = 3.0) -> Reachability:
    """Which configured services' ports open from here, and the fallbacks for those that do not."""
    from daca_kit.adapters.outbound import reachability

    return reachability(settings, timeout=timeout)


class _Timeout(TypedDict, total=False):
    timeout: float


def _given(timeout: float | None) -> _Timeout:
    """The timeout argument when one is given; else none, so each adapter keeps its own default."""
    return {} if timeout is None else {"timeout": timeout}
