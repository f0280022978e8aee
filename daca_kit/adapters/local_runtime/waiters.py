"""Who waits for which workflow instance in this process, and who listens to every change.

    waiters = Waiters(get=runtime.get, in_memory=runtime.in_memory, clock=utcnow)
    state = waiters.wait(instance_id, 30, recheck)            # a thread blocks
    state = await waiters.wait_async(instance_id, 30, recheck)  # an event loop sleeps
    waiters.publish(state)                                     # after each change: wake them, tell listeners

`recheck(left)` says how long a waiter may sleep before it reads the instance again on its own: all of
`left` while changes made elsewhere are announced, about a second while they are not.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from daca_kit.core.models import InstanceState

log = logging.getLogger(__name__)


class Waiters:
    """Condition variable for threads, futures for event loops, and the change listeners."""

    def __init__(
        self,
        *,
        get: Callable[[str], InstanceState | None],
        in_memory: Callable[[str], bool],
        clock: Callable[[], datetime],
    ) -> None:
        self.get = get
        self.in_memory = in_memory
        self.clock = clock
        self._changed = threading.Condition()
        self._futures: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]] = {}
        self.listeners: list[Callable[[InstanceState], None]] = []

    def wait(
        self, instance_id: str, timeout: float, recheck: Callable[[float], float]
    ) -> InstanceState | None:
        """Blocks until the instance ends or `timeout` seconds pass; returns its latest state."""
        deadline = self.clock() + timedelta(seconds=timeout)
        with self._changed:
            while True:
                state = self.get(instance_id)
                if state is None or state.is_terminal:
                    return state
                left = (deadline - self.clock()).total_seconds()
                if left <= 0:
                    return state
                self._changed.wait(recheck(left))

    async def wait_async(
        self, instance_id: str, timeout: float, recheck: Callable[[float], float]
    ) -> InstanceState | None:
        """Like `wait`, without holding a thread: the event loop sleeps until the instance changes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            future: asyncio.Future[None] = loop.create_future()
            self._futures.setdefault(instance_id, []).append((loop, future))
            try:
                state = (
                    await asyncio.to_thread(self.get, instance_id)
                    if not self.in_memory(instance_id)
                    else self.get(instance_id)
                )
                if state is None or state.is_terminal:
                    return state
                left = deadline - loop.time()
                if left <= 0:
                    return state
                try:
                    await asyncio.wait_for(future, recheck(left))
                except TimeoutError:
                    if loop.time() >= deadline:
                        return await asyncio.to_thread(self.get, instance_id)
            finally:
                waiters = self._futures.get(instance_id, [])
                if (loop, future) in waiters:
                    waiters.remove((loop, future))
                if not waiters:
                    self._futures.pop(instance_id, None)

    def publish(self, state: InstanceState) -> None:
        with self._changed:
            self._changed.notify_all()
        for loop, future in list(self._futures.get(state.instance_id, ())):
            loop.call_soon_threadsafe(_resolve_future, future)
        for listener in self.listeners:
            try:
                listener(state)
            except Exception:  # noqa: BLE001 - a listener must not break the runtime
                log.exception("workflow listener failed")

    def wake_all(self) -> None:
        """Every waiter reads its instance again (changes made elsewhere may have been missed)."""
        with self._changed:
            self._changed.notify_all()
        for waiters in list(self._futures.values()):
            for loop, future in list(waiters):
                loop.call_soon_threadsafe(_resolve_future, future)


def _resolve_future(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
