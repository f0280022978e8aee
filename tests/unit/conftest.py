from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from daca_kit.bootstrap import bootstrap
from daca_kit.core.kit import Kit
from tests.support.fakes import FakeCounters, FakeEventBus, FakeReplyModel


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


def settle(kit: Kit, timeout: float = 5.0) -> None:
    """Waits until the relay has published everything committed so far."""
    assert kit.relay is not None
    kit.relay.wake()
    assert kit.relay.wait_idle(timeout)
