"""The local runtime's facade: starts, resumes, waits for and announces workflow instances.

    runtime = LocalRuntime(store, workflows={"chat_turn": chat_turn}, activities=acts.as_dict())
    runtime.start()
    state = runtime.schedule("chat_turn", instance_id, input)   # runs until the turn settles

The replay itself is `ReplayEngine`'s (engine.py), the due times `TimerQueue`'s (timers.py); this class
holds the per-instance locks, saves each step with an optimistic version, and wakes whoever waits.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from daca_kit.adapters.inprocess import InProcessWakeUps
from daca_kit.adapters.local_runtime.engine import ReplayEngine
from daca_kit.adapters.local_runtime.peers import Peers
from daca_kit.adapters.local_runtime.timers import TimerQueue
from daca_kit.adapters.local_runtime.waiters import Waiters
from daca_kit.core.clock import new_id, parse_iso, utcnow
from daca_kit.core.models import Backend, InstanceState
from daca_kit.core.ports import Activity, WakeUps, Workflow, WorkflowStore
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
        wakeups: WakeUps | None = None,
        owner: str | None = None,
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
        self.engine.before_checkpoint = self._claim_new
        self.timers = TimerQueue(self._fire, clock=clock)
        self.peers = Peers(store, wakeups or InProcessWakeUps(), owner=owner or new_id())
        # An instance that ends without ever waiting is not written when `recoverable(state)` says its
        # result can be read back elsewhere (a completed chat turn: its `conversation` row).
        self._recoverable = recoverable or (lambda _state: False)
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="workflow")
        self._memory: dict[str, InstanceState] = {}
        self._memory_lock = threading.Lock()
        self._instance_locks: dict[str, threading.Lock] = {}
        self.waiters = Waiters(get=self.get, in_memory=self.in_memory, clock=clock)
        self._stopped = threading.Event()
        self._claimed_new: set[str] = set()

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        self._stopped.clear()
        self.timers.start()
        active = self._arm_active()
        for instance_id in active:
            self._pool.submit(self._advance_safely, instance_id)
        if active:
            log.info("resumed %d waiting workflow instance(s)", len(active))
        self.peers.wakeups.listen(self._announced)

    def _arm_active(self) -> list[str]:
        """Arms the timers of every waiting instance (at start, and after missing announcements)."""
        ids = []
        for row in self.store.active():
            state = InstanceState.from_row(row)
            if state.timer_fire_at is not None:
                self.timers.arm(state.timer_fire_at, state.instance_id)
            ids.append(state.instance_id)
        return ids

    def close(self) -> None:
        self._stopped.set()
        self.peers.wakeups.close()
        self.timers.close()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def ping(self) -> None:
        """Always ready: its state lives in the database, which /health probes on its own."""

    def on_change(self, listener: Callable[[InstanceState], None]) -> None:
        """Calls `listener(state)` after every change of an instance (UI push, metrics)."""
        self.waiters.listeners.append(listener)

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
                    if instance_id in self._claimed_new:
                        self._claimed_new.discard(instance_id)
                        self.peers.release(instance_id)
        finally:
            self._forget_lock(instance_id, lock)
        return state

    def _claim_new(self, instance_id: str) -> None:
        """Before a new instance is first written: it stays this process's until its first step is saved."""
        if self.peers.claim(instance_id):
            self._claimed_new.add(instance_id)

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
        return self.waiters.wait(instance_id, timeout, self.peers.recheck)

    async def wait_async(self, instance_id: str, timeout: float) -> InstanceState | None:
        """Like `wait`, without holding a thread: the event loop sleeps until the instance changes."""
        return await self.waiters.wait_async(instance_id, timeout, self.peers.recheck)

    def in_memory(self, instance_id: str) -> bool:
        """Whether the instance is in its first step here (read from memory, not the database)."""
        with self._memory_lock:
            return instance_id in self._memory

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
        claimed = instance_id in self._claimed_new
        try:
            for _attempt in range(5):
                row = self.store.get(instance_id)
                if row is None:
                    return state
                state = InstanceState.from_row(row)
                if state.is_terminal:
                    return state
                events = self.store.events(instance_id)
                if not claimed and (events or self._may_work(state)):
                    if not self.peers.claim(instance_id):  # another process runs this step
                        self._retry_later(instance_id)
                        return state
                    claimed = True
                    if not events and state.timer_fire_at is not None:
                        log.info("timer of workflow %s came due; resuming it in this process", instance_id)
                    continue  # read again: the holder before us may have moved it on
                if self._step(state, events=events):
                    return state
            return state
        finally:
            if claimed and instance_id not in self._claimed_new:
                self.peers.release(instance_id)

    def _may_work(self, state: InstanceState) -> bool:
        """Whether resuming the instance without new events does more than replay: it waits on no timer
        (it was stored before it reached a wait) or its timer is due."""
        return state.timer_fire_at is None or state.timer_fire_at <= self.clock()

    def _retry_later(self, instance_id: str) -> None:
        delay = self.peers.retry_delay(instance_id)
        self.timers.arm(self.clock() + timedelta(seconds=delay), instance_id)

    def _step(self, state: InstanceState, *, events: list[dict[str, Any]]) -> bool:
        """Runs the instance as far as it can go and saves it. False if another writer won the race."""
        consumed: list[int] = []
        grew: list[bool] = []
        outcome = self.engine.execute(state, events, consumed, grew)
        # After a checkpoint (see `ReplayEngine._checkpoint`) the instance is stored already.
        expected_version = state.version
        state.updated_at = self.clock()
        if outcome == "waiting" and expected_version is not None and not consumed and not grew:
            self.waiters.publish(state)
            return True  # nothing new happened (e.g. a timer armed before restart fired early)
        if outcome == "done" and expected_version is None and self._recoverable(state):
            self.waiters.publish(state)
            return True  # finished without ever waiting, and its result is stored elsewhere
        saved = self.store.save(state.to_row(), expected_version=expected_version, consumed_events=consumed)
        if not saved:
            log.info("workflow %s was advanced elsewhere; reloading", state.instance_id)
            return False
        state.version = (expected_version or 0) + 1
        if outcome == "waiting" and state.timer_fire_at is not None:
            self.timers.arm(state.timer_fire_at, state.instance_id)
        self.peers.announce(state)
        self.waiters.publish(state)
        return True

    def _fire(self, instance_id: str) -> None:
        """A timer came due (on the timer thread): resume the instance in the pool."""
        if not self._stopped.is_set():
            self._pool.submit(self._advance_safely, instance_id)

    # -- what other processes announce (on the wake-up thread) ---------------------------------------
    def _announced(self, instance_id: str | None, timer: str | None) -> None:
        if self._stopped.is_set():
            return
        if instance_id is None:  # (re)connected: what changed meanwhile is unknown
            self._pool.submit(self._resync)
            return
        if timer is not None:
            self.timers.arm(parse_iso(timer), instance_id)
        self._pool.submit(self._observe, instance_id)

    def _observe(self, instance_id: str) -> None:
        """Another process saved a step of the instance: wake whoever waits for it here."""
        state = self.get(instance_id)
        if state is not None:
            self.waiters.publish(state)

    def _resync(self) -> None:
        self._arm_active()
        self.waiters.wake_all()

    # -- notifications -------------------------------------------------------------------------
