"""The local runtime's timers: one thread that sleeps until the earliest due time.

    timers = TimerQueue(fire=lambda instance_id: ..., clock=utcnow)
    timers.start(); timers.arm(fire_at, instance_id); timers.close()

A waiting instance costs nothing until its time comes: no polling, one heap, one condition variable.
`fire` is called on the timer thread and must return at once (the runtime hands the work to its pool).
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable
from datetime import datetime


class TimerQueue:
    """Due times of waiting instances; calls `fire(instance_id)` when each comes."""

    def __init__(self, fire: Callable[[str], None], *, clock: Callable[[], datetime]) -> None:
        self.fire = fire
        self.clock = clock
        self._timers: list[tuple[datetime, str]] = []
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    def start(self) -> None:
        self._stopped.clear()
        self._thread = threading.Thread(target=self._loop, name="workflow-timers", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stopped.set()
        with self._cv:
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def arm(self, fire_at: datetime, instance_id: str) -> None:
        with self._cv:
            heapq.heappush(self._timers, (fire_at, instance_id))
            self._cv.notify()

    def __len__(self) -> int:
        with self._cv:
            return len(self._timers)

    def _loop(self) -> None:
        with self._cv:
            while not self._stopped.is_set():
                if not self._timers:
                    self._cv.wait()
                    continue
                fire_at, instance_id = self._timers[0]
                wait = (fire_at - self.clock()).total_seconds()
                if wait > 0:
                    self._cv.wait(min(wait, 3600))
                    continue
                heapq.heappop(self._timers)
                if not self._stopped.is_set():
                    self.fire(instance_id)
