"""The workflow inbox as Dapr Workflow's outbox: events recorded with a decision, raised on the engine.

    delivery = InboxDelivery(stores.workflows, raise_event=runtime.deliver)
    delivery.start()        # first delivers what an earlier process left behind
    delivery.wake()         # after a commit that wrote an event (ReviewDesk.decide, through runtime.notify)

A review decision and the event that resumes its turn are written in one database transaction (table
`workflow_event`, the local runtime's inbox). This thread raises each event on Dapr Workflow and deletes
it once Dapr accepted it; while the sidecar is down the events stay and are retried with exponential
backoff, so a decision the reviewer saw recorded always reaches its turn, and never reaches it twice
in a way that matters (an event raised again after a crash between the raise and the delete is one the
workflow no longer waits for). While idle it reads the table only every `sweep_interval` seconds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from daca_kit.core.ports import WorkflowStore
from daca_kit.errors import BackendError

log = logging.getLogger(__name__)


class InboxDelivery:
    """Raises the inbox's events on the workflow engine, oldest first; one thread, woken by `wake`."""

    def __init__(
        self,
        inbox: WorkflowStore,
        *,
        raise_event: Callable[[dict[str, Any]], None],
        batch: int = 50,
        sweep_interval: float = 300.0,
        backoff_min: float = 0.2,
        backoff_max: float = 30.0,
    ) -> None:
        self.inbox = inbox
        self.raise_event = raise_event
        self.batch = batch
        self.sweep_interval = sweep_interval
        self.backoff = (backoff_min, backoff_max)
        self.delivered = 0
        self.last_error: str | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._wake.set()  # the first round sweeps what a crash or another process left
        self._thread = threading.Thread(target=self._run, name="dapr-inbox-delivery", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def deliver_pending(self) -> int:
        """Raises one batch of events, deleting each once raised; BackendError when the engine is down."""
        events = self.inbox.pending_events(self.batch)
        raised: list[int] = []
        try:
            for event in events:
                self.raise_event(event)
                raised.append(event["id"])
        finally:
            self.inbox.delete_events(raised)
            self.delivered += len(raised)
        return len(events)

    def _run(self) -> None:
        delay = self.backoff[0]
        while not self._stop.is_set():
            self._wake.wait(self.sweep_interval)
            if self._stop.is_set():
                return
            self._wake.clear()
            try:
                full = self.deliver_pending() >= self.batch
            except BackendError as exc:
                self.last_error = str(exc)
                log.warning(
                    "review decisions wait to be raised on Dapr Workflow: %s; retrying in %.1fs", exc, delay
                )
                self._stop.wait(delay)
                delay = min(delay * 2, self.backoff[1])
                self._wake.set()
                continue
            except Exception:  # noqa: BLE001 - the delivery thread must outlive any failure
                log.exception("raising workflow events failed unexpectedly; retrying in %.1fs", delay)
                self._stop.wait(delay)
                self._wake.set()
                continue
            delay, self.last_error = self.backoff[0], None
            if full:
                self._wake.set()
