"""The analytics consumer: MessageSent events become counts, once per event id, one by one or as a batch
received together (one counters call for the lot)."""

from __future__ import annotations

from daca_kit.core.analytics import AnalyticsConsumer
from daca_kit.core.ports import BatchHandler
from tests.support.fakes import FakeCounters


def sent(event_id: str, user_id: str) -> dict:
    return {"id": event_id, "type": "MessageSent", "data": {"user_id": user_id, "reply": "hi"}}


def test_a_batch_is_counted_with_one_call_and_each_event_once() -> None:
    counters = FakeCounters()
    consumer = AnalyticsConsumer(counters)
    assert isinstance(consumer, BatchHandler)  # what a batching bus looks for
    consumer(sent("e1", "alice"))
    batch = [
        sent("e1", "alice"),  # delivered again
        sent("e2", "alice"),
        {"id": "r1", "type": "HumanReviewRequired", "data": {"user_id": "alice"}},  # not a count
        {"id": "e3", "type": "MessageSent", "data": {}},  # no user: logged and skipped
        sent("e4", "bob"),
    ]
    consumer.handle_many(batch)
    assert counters.values == {"alice": 2, "bob": 1}
    assert counters.batches == [3]  # one call, with the three MessageSent events that name a user
    consumer.handle_many(batch)  # the broker delivers the batch again: nothing more
    assert counters.values == {"alice": 2, "bob": 1}


def test_a_batch_without_messages_makes_no_call() -> None:
    counters = FakeCounters()
    AnalyticsConsumer(counters).handle_many([{"id": "r1", "type": "HumanReviewRequired", "data": {}}])
    assert counters.batches == [] and counters.commands == 0


def test_a_failed_batch_raises_so_the_bus_delivers_it_again() -> None:
    counters = FakeCounters()
    consumer = AnalyticsConsumer(counters)
    counters.down = True
    try:
        consumer.handle_many([sent("e1", "alice")])
    except Exception as exc:  # noqa: BLE001
        assert "down" in str(exc)
    else:
        raise AssertionError("a failed count must raise")
    counters.down = False
    consumer.handle_many([sent("e1", "alice")])
    assert counters.values == {"alice": 1}
