"""The local runtime's facade: starts, resumes, waits for and announces workflow instances.

    runtime = LocalRuntime(store, workflows={"chat_turn": chat_turn}, activities=acts.as_dict())
    runtime.start()
    state = runtime.schedule("chat_turn", instance_id, input)   # runs until the turn settles

The replay itself is `ReplayEngine`'s (engine.py), the due times `TimerQueue`'s (timers.py); this class
holds the per-instance locks, saves each step with an optimistic version, and wakes whoever waits.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from daca_kit.adapters.local_runtime.engine import ReplayEngine
from daca_kit.adapters.local_runtime.timers import TimerQueue
from daca_kit.core.clock import utcnow
from daca_kit.core.models import Backend, InstanceState
from daca_kit.core.ports import Activity, Workflow, WorkflowStore
from daca_kit.errors import WorkflowError

log = logging.getLogger(__name__)


class LocalRuntime:
    """Durable runtime for Dapr-style workflows on the kit's SQL store."""

    name = "local"
    backend = Backend("local", "local", "the kit's local durable runtime (embedded)", embedded=True)

    def __init__(
        self,
        store: WorkflowStore,
        *,
        workflows: dict[str, Workflow],
        activities: dict[str, Activity],
        max_workers: int = 4,
        clock: Callable[[], datetime] = utcnow,
        recoverable: Callable[[InstanceState], bool] | None = None,
        checkpoint_before: Collection[str] = (),
    ) -> None:
        self.store = store
        self.workflows = dict(workflows)
        self.activities = dict(activities)
        self.clock = clock
        self.engine = ReplayEngine(
            store,
            workflows=self.workflows,
            activities=self.activities,
            clock=clock,
            checkpoint_before=checkpoint_before,
        )
        self.timers = TimerQueue(self._fire, clock=clock)
        # An instance that ends without ever waiting is not written when `recoverable(state)` says its
        # result can be read back elsewhere (a completed chat turn: its `conversation` row).
        self._recoverable = recoverable or (lambda _state: False)
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="workflow")
        self._memory: dict[str, InstanceState] = {}
        self._memory_lock = threading.Lock()
        self._instance_locks: dict[str, threading.Lock] = {}
        self._changed = threading.Condition()
        self._async_waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]] = {}
        self._listeners: list[Callable[[InstanceState], None]] = []
        self._stopped = threading.Event()

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        self._stopped.clear()
        self.timers.start()
        active = self.store.active()
        for row in active:
            state = InstanceState.from_row(row)
            if state.timer_fire_at is not None:
                self.timers.arm(state.timer_fire_at, state.instance_id)
            self._pool.submit(self._advance_safely, state.instance_id)
        if active:
            log.info("resumed %d waiting workflow instance(s)", len(active))

    def close(self) -> None:
        self._stopped.set()
        self.timers.close()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def ping(self) -> None:
        """Always ready: its state lives in the database, which /health probes on its own."""

    def on_change(self, listener: Callable[[InstanceState], None]) -> None:
        """Calls `listener(state)` after every change of an instance (UI push, metrics)."""
        self._listeners.append(listener)

    # -- the runtime's API ----------------------------------------------------------------------
    def schedule(self, name: str, instance_id: str, input: dict[str, Any]) -> InstanceState:
        """Starts an instance and runs it in the calling thread until it ends or has to wait."""
        if name not in self.workflows:
            raise WorkflowError(f"No workflow named '{name}' is registered")
        now = self.clock()
        state = InstanceState(instance_id=instance_id, name=name, input=input, created_at=now, updated_at=now)
        lock = self._lock_for(instance_id)
        try:
            with lock:  # an event raised for it meanwhile resumes it once this first step is saved
                with self._memory_lock:
                    self._memory[instance_id] = state
                try:
                    if not self._step(state, events=[]):
                        # Another process resumed it after its checkpoint: go on from what that one saved.
                        state = self._advance_locked(instance_id) or state
                finally:
                    with self._memory_lock:
                        self._memory.pop(instance_id, None)
        finally:
            self._forget_lock(instance_id, lock)
        return state

    def get(self, instance_id: str) -> InstanceState | None:
        with self._memory_lock:
            state = self._memory.get(instance_id)
        if state is not None:
            return state
        row = self.store.get(instance_id)
        return InstanceState.from_row(row) if row else None

    def notify(self, instance_id: str) -> None:
        """Resumes an instance whose inbox got an event (written by someone else's transaction)."""
        if not self._stopped.is_set():
            self._pool.submit(self._advance_safely, instance_id)

    def wait(self, instance_id: str, timeout: float) -> InstanceState | None:
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
                self._changed.wait(left)

    async def wait_async(self, instance_id: str, timeout: float) -> InstanceState | None:
        """Like `wait`, without holding a thread: the event loop sleeps until the instance changes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            future: asyncio.Future[None] = loop.create_future()
            self._async_waiters.setdefault(instance_id, []).append((loop, future))
            try:
                state = (
                    await asyncio.to_thread(self.get, instance_id)
                    if self._needs_db(instance_id)
                    else self.get(instance_id)
                )
                if state is None or state.is_terminal:
                    return state
                left = deadline - loop.time()
                if left <= 0:
                    return state
                try:
                    await asyncio.wait_for(future, left)
                except TimeoutError:
                    return await asyncio.to_thread(self.get, instance_id)
            finally:
                waiters = self._async_waiters.get(instance_id, [])
                if (loop, future) in waiters:
                    waiters.remove((loop, future))
                if not waiters:
                    self._async_waiters.pop(instance_id, None)

    def _needs_db(self, instance_id: str) -> bool:
        with self._memory_lock:
            return instance_id not in self._memory

    # -- execution -------------------------------------------------------------------------------
    def _lock_for(self, instance_id: str) -> threading.Lock:
        with self._memory_lock:
            lock = self._instance_locks.get(instance_id)
            if lock is None:
                lock = self._instance_locks[instance_id] = threading.Lock()
            return lock

    def _advance_safely(self, instance_id: str) -> None:
        try:
            self._advance(instance_id)
        except Exception:  # noqa: BLE001 - a background resume must never die silently
            log.exception(
                "resuming workflow %s failed; it will be retried on the next event or restart", instance_id
            )

    def _forget_lock(self, instance_id: str, lock: threading.Lock) -> None:
        with self._memory_lock:
            if self._instance_locks.get(instance_id) is lock and not lock.locked():
                self._instance_locks.pop(instance_id, None)

    def _advance(self, instance_id: str) -> None:
        lock = self._lock_for(instance_id)
        with lock:
            self._advance_locked(instance_id)
        self._forget_lock(instance_id, lock)

    def _advance_locked(self, instance_id: str) -> InstanceState | None:
        """Resumes the stored instance with its inbox; returns its latest state (None: not stored)."""
        state: InstanceState | None = None
        for _attempt in range(5):
            row = self.store.get(instance_id)
            if row is None:
                return state
            state = InstanceState.from_row(row)
            if state.is_terminal or self._step(state, events=self.store.events(instance_id)):
                return state
        return state

    def _step(self, state: InstanceState, *, events: list[dict[str, Any]]) -> bool:
        """Runs the instance as far as it can go and saves it. False if another writer won the race."""
        consumed: list[int] = []
        grew: list[bool] = []
        outcome = self.engine.execute(state, events, consumed, grew)
        expected_version = (
            state.version
        )  # after a checkpoint (see `ReplayEngine._checkpoint`) the instance is stored
        state.updated_at = self.clock()
        if outcome == "waiting" and expected_version is not None and not consumed and not grew:
            self._publish(state)
            return True  # nothing new happened (e.g. a timer armed before restart fired early)
        if outcome == "done" and expected_version is None and self._recoverable(state):
            self._publish(state)
            return True  # finished without ever waiting, and its result is stored elsewhere
        saved = self.store.save(state.to_row(), expected_version=expected_version, consumed_events=consumed)
        if not saved:
            log.info("workflow %s was advanced elsewhere; reloading", state.instance_id)
            return False
        state.version = (expected_version or 0) + 1
        if outcome == "waiting" and state.timer_fire_at is not None:
            self.timers.arm(state.timer_fire_at, state.instance_id)
        self._publish(state)
        return True

    def _fire(self, instance_id: str) -> None:
        """A timer came due (on the timer thread): resume the instance in the pool."""
        if not self._stopped.is_set():
            self._pool.submit(self._advance_safely, instance_id)

    # -- notifications -------------------------------------------------------------------------
    def _publish(self, state: InstanceState) -> None:
        with self._changed:
            self._changed.notify_all()
        for loop, future in list(self._async_waiters.get(state.instance_id, ())):
            loop.call_soon_threadsafe(_resolve_future, future)
        for listener in self._listeners:
            try:
                listener(state)
            except Exception:  # noqa: BLE001 - a listener must not break the runtime
                log.exception("workflow listener failed")


def _resolve_future(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
