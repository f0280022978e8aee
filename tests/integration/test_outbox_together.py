"""The outbox on the real Postgres handing batches to a batching bus: two relays working at once never get
the same event, every event is published once, and a refused one stays."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from daca_kit.adapters.sql import open_stores
from daca_kit.core.workflow import cloud_event

pytestmark = pytest.mark.integration


def test_two_relays_share_the_outbox_without_publishing_an_event_twice(pg_url: str) -> None:
    stores = open_stores(pg_url)
    stores.database.create_all()
    outbox = stores.outbox
    events = [("messages", f"e{i}", cloud_event("MessageSent", f"e{i}", "messages", {})) for i in range(120)]
    with stores.database.engine.begin() as conn:
        outbox.add(conn, events)
    published: list[str] = []
    lock = threading.Lock()

    def publish_many(rows: list[dict[str, Any]]) -> list[int]:
        time.sleep(0.05)  # the batch is in flight while the other relay reads
        with lock:
            published.extend(row["payload"]["id"] for row in rows)
        return []

    def relay() -> None:
        while outbox.publish_together(20, publish_many):
            pass

    try:
        relays = [threading.Thread(target=relay) for _ in range(2)]
        for thread in relays:
            thread.start()
        for thread in relays:
            thread.join(30)
        assert sorted(published) == sorted(f"e{i}" for i in range(120))  # each once
        assert outbox.size() == 0

        with stores.database.engine.begin() as conn:
            outbox.add(conn, [("messages", "kept", cloud_event("MessageSent", "kept", "messages", {}))])
        assert outbox.publish_together(10, lambda rows: [0]) == 0  # refused: it stays
        assert outbox.size() == 1
    finally:
        stores.database.close()
