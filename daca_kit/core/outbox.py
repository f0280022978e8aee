"""The outbox relay: publishes events committed with their rows, and deletes them once confirmed.

    relay = OutboxRelay(outbox, bus); relay.start()   # outbox.on_commit(relay.wake) is wired by start()

It sleeps until a commit wakes it, publishes in batches (confirmed as one, with one round trip to the
broker, when the bus is a `BatchPublisher`; under load a relay that waits for a confirm per event falls
behind the turns it relays), and sweeps the table only every
`sweep_interval` seconds while idle (catching events left by a crash or another process), so an idle
app makes almost no database calls (on CockroachDB Serverless idle polling would burn request units).
When the broker is down the events stay in the table and the relay retries with exponential backoff.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from daca_kit.core.ports import BatchPublisher, EventBus, OutboxStore
from daca_kit.errors import BackendError, BusError

log = logging.getLogger(__name__)


class OutboxRelay:
    """Publishes what the outbox holds; one thread, woken by commits."""

    def __init__(
        self,
        outbox: OutboxStore,
        bus: EventBus,
        *,
        batch: int = 100,
        sweep_interval: float = 300.0,
        backoff_min: float = 0.2,
        # A failed publish (broker, or with the in-process bus the counters, down) is retried after 0.2 s,
        # then ever later, at most every 10 s: counts catch up within seconds of the service's return, for
        # one outbox read every 10 s while it is down.
        backoff_max: float = 10.0,
        linger: float = 0.02,
    ) -> None:
        self.outbox = outbox
        # After a commit wakes an idle relay it waits this long for more, so that at a steady trickle of
        # turns a batch carries several events: fewer statements and broker round trips per turn (free
        # tiers bill them) for at most this much more lag.
        self.linger = linger
        self.bus = bus
        self.batch = batch
        self.sweep_interval = sweep_interval
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self.published = 0
        self.failures = 0
        self.last_error: str | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._idle_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.outbox.on_commit(self.wake)
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="outbox-relay", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        with self._idle_lock:
            self._idle.clear()
            self._wake.set()

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """True once the relay found the outbox empty (tests and notebooks use this)."""
        return self._idle.wait(timeout)

    def _loop(self) -> None:
        delay = self.backoff_min
        while not self._stop.is_set():
            self._wake.clear()
            try:
                sent = self.relay_once()
            except Exception as exc:  # noqa: BLE001 - the relay thread must outlive any failure
                self.failures += 1
                self.last_error = (
                    str(exc) if isinstance(exc, BackendError) else f"{type(exc).__name__}: {exc}"
                )
                if isinstance(exc, BackendError):
                    log.warning("outbox relay: %s; retrying in %.1fs", exc, delay)
                else:
                    log.exception("outbox relay failed unexpectedly; retrying in %.1fs", delay)
                self._stop.wait(delay)
                delay = min(delay * 2, self.backoff_max)
                continue
            delay = self.backoff_min
            if sent < self.batch:
                # Everything committed before this read is out; sleep until the next commit wakes us
                # (a commit during the read has set the wake flag, so nothing waits for the sweep).
                with self._idle_lock:
                    if not self._wake.is_set():
                        self._idle.set()
                if self._wake.wait(self.sweep_interval) and self.linger:
                    self._stop.wait(self.linger)
            # A full batch: go again at once.

    def relay_once(self) -> int:
        """Publishes one batch; returns how many were published. Raises BackendError on failure.

        The outbox hands each event to one process (several may relay one database), and deletes it once
        the bus confirmed it (a batching bus gets the whole batch at once)."""
        if isinstance(self.bus, BatchPublisher):
            return self._relay_together(self.bus)
        sent: list[str] = []

        def publish(row: dict[str, Any]) -> None:
            self.bus.publish(row["topic"], row["payload"])
            sent.append(row["event_id"])

        try:
            count = self.outbox.publish_batch(self.batch, publish)
        except BusError as exc:
            self.published += len(sent)
            raise BusError(f"Events wait in the outbox: {exc}") from exc
        self.published += count
        if count:
            self.last_error = None
        return count

    def _relay_together(self, bus: BatchPublisher) -> int:
        refused: list[int] = []

        def publish_many(rows: list[dict[str, Any]]) -> list[int]:
            refused[:] = bus.publish_many([(row["topic"], row["payload"]) for row in rows])
            return refused

        try:
            count = self.outbox.publish_together(self.batch, publish_many)
        except BusError as exc:
            raise BusError(f"Events wait in the outbox: {exc}") from exc
        self.published += count
        if refused:
            raise BusError(f"the broker refused {len(refused)} event(s); they wait in the outbox")
        if count:
            self.last_error = None
        return count
