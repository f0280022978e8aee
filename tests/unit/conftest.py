from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from daca_kit.adapters.dapr.workflow import DaprWorkflowRuntime
from daca_kit.adapters.inprocess import InProcessReplyChannel
from daca_kit.adapters.sql import open_stores
from daca_kit.bootstrap import bootstrap
from daca_kit.core.activities import TurnActivities
from daca_kit.core.kit import Kit
from daca_kit.core.workflow import WORKFLOW_NAME, chat_turn
from tests.support.fakes import FakeCounters, FakeEventBus, FakeReplyModel
from tests.support.replay import EngineWorkflowClient, engine_registry


@pytest.fixture
def fakes() -> dict[str, Any]:
    return {"counters": FakeCounters(), "bus": FakeEventBus(), "llm": FakeReplyModel()}


@pytest.fixture
def make_kit(settings_factory: Callable[..., Any], fakes: dict[str, Any]) -> Iterator[Callable[..., Kit]]:
    """Builds a started Kit on fakes and a fresh SQLite file; closes every kit it built."""
    kits: list[Kit] = []

    def make(**overrides: Any) -> Kit:
        ports = {k: overrides.pop(k, v) for k, v in fakes.items()}
        kit = bootstrap(settings_factory(**overrides), **ports).start()
        kits.append(kit)
        return kit

    yield make
    for kit in kits:
        kit.close()


@pytest.fixture
def engine_kit(settings_factory: Any) -> Iterator[tuple[Kit, EngineWorkflowClient]]:
    """A Kit on DaprWorkflowRuntime whose client is Dapr's engine in process, with the real activities."""
    settings = settings_factory(runtime="dapr", chat_wait=0, review_timeout="1h")
    store = open_stores(settings.database_url)
    counters, bus, llm = FakeCounters(), FakeEventBus(), FakeReplyModel()
    activities = TurnActivities(
        conversations=store.conversations,
        reviews=store.reviews,
        counters=counters,
        model=llm,
        replies=InProcessReplyChannel(),
    )
    client = EngineWorkflowClient()
    runtime = DaprWorkflowRuntime(
        {WORKFLOW_NAME: chat_turn},
        activities.as_dict(),
        inbox=store.workflows,
        client=client,
        settle_timeout=5,
    )
    client.registry = engine_registry(runtime)
    kit = bootstrap(settings, store=store, counters=counters, bus=bus, llm=llm, runtime=runtime)
    kit.activities = activities  # the ones the runtime runs (reply channel and model health included)
    kit.start()
    yield kit, client
    kit.close()


def settle(kit: Kit, timeout: float = 5.0) -> None:
    """Waits until the relay has published everything committed so far."""
    assert kit.relay is not None
    kit.relay.wake()
    assert kit.relay.wait_idle(timeout)
