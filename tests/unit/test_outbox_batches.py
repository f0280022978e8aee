"""The outbox relay on a bus that confirms batches: events waiting in the outbox go out together, and an
event the broker refuses stays in the outbox until it is taken, counted once."""

from __future__ import annotations

import time
from typing import Any

from daca_kit.core.kit import Kit
from tests.support.fakes import FakeBatchEventBus


def _drain(kit: Kit, until: Any, timeout: float = 5.0) -> None:
    assert kit.relay is not None
    kit.relay.backoff_min = 0.01
    deadline = time.monotonic() + timeout
    while not until() and time.monotonic() < deadline:
        kit.relay.wake()
        time.sleep(0.02)


def test_events_waiting_in_the_outbox_go_out_as_one_batch(make_kit, fakes) -> None:
    bus = FakeBatchEventBus()
    kit = make_kit(bus=bus)
    bus.down = True
    for i in range(5):
        assert kit.chat_sync("olga", f"m{i}").status == "completed"
    assert kit.stores.outbox.size() == 5

    bus.down = False
    # The relay adds to `published` just after the batch's rows are deleted.
    _drain(kit, lambda: kit.stores.outbox.size() == 0 and kit.relay is not None and kit.relay.published == 5)

    assert fakes["counters"].values["olga"] == 5
    assert [len(batch) for batch in bus.batches] == [5]  # one round trip for the five
    assert kit.relay is not None and kit.relay.published == 5


def test_a_refused_event_stays_in_the_outbox_and_is_counted_once_when_taken(make_kit, fakes) -> None:
    bus = FakeBatchEventBus()
    kit = make_kit(bus=bus)
    bus.down = True
    results = [kit.chat_sync("pia", f"m{i}") for i in range(3)]
    refused_id = f"{results[1].instance_id}:MessageSent"
    bus.refuse = {refused_id}
    bus.down = False

    _drain(kit, lambda: kit.stores.outbox.size() == 1 and fakes["counters"].values.get("pia") == 2)
    assert kit.stores.outbox.size() == 1  # the refused one waits; the others are gone
    assert fakes["counters"].values["pia"] == 2
    assert kit.relay is not None and "refused 1 event" in (kit.relay.last_error or "")

    bus.refuse = set()
    _drain(kit, lambda: kit.stores.outbox.size() == 0)
    assert fakes["counters"].values["pia"] == 3
    assert [e["id"] for e in bus.sent["messages"]].count(refused_id) == 1
    assert kit.relay.last_error is None


def test_turns_committed_close_together_share_a_batch(make_kit, fakes) -> None:
    bus = FakeBatchEventBus()
    kit = make_kit(bus=bus)
    assert kit.relay is not None
    kit.relay.linger = 2.0  # generous: the three turns below take about 0.2 s
    kit.relay.wake()
    assert kit.relay.wait_idle(5)

    for i in range(3):
        kit.chat_sync("quin", f"m{i}")
        time.sleep(0.1)  # long enough for a relay without lingering to publish each on its own
    _drain(kit, lambda: kit.stores.outbox.size() == 0)

    assert [len(batch) for batch in bus.batches] == [3]  # one relay round for the three commits
    assert fakes["counters"].values["quin"] == 3
