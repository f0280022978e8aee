"""The kit's local durable workflow runtime (the default; `DACA_RUNTIME=local`).

    runtime = LocalRuntime(store, workflows={"chat_turn": chat_turn}, activities=acts.as_dict())
    runtime.start()
    state = runtime.schedule("chat_turn", instance_id, input)   # runs until the turn settles

It runs Dapr-Workflow-style generator functions with the same replay model as Dapr's engine: each
yielded task's result is appended to the instance's history; resuming replays the generator from the
start, feeding recorded results, and checks that the same tasks are asked for again (a different task
means the workflow is not deterministic: WorkflowError).

Durability: an instance is written to the SQL database when it first has to wait (for an external
event or a timer) and when it ends; a turn that finishes without waiting costs no workflow writes
at all when its result is recoverable from what its activities stored (see `recoverable`). Events
raised for an instance are stored in an inbox table and consumed in the same transaction that saves
the history, so a crash at any point loses nothing. An activity that lets someone outside act on the
instance (`request_review`: a reviewer may decide at once) is named in `checkpoint_before`: the
instance is written before it runs, so whatever it exposes can always resume the instance, in this
process, in another one, or after a restart. Until its first step ends an instance holds its lock, so
an event raised meanwhile in this process resumes it right after.

No polling: a waiting instance costs nothing until its event is raised (the raiser resumes it) or its
timer fires (one in-process timer thread sleeps until the earliest due time). After a restart,
`start()` re-arms the timers of waiting instances and resumes each once, to catch events raised while
the process was down.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import logging
import threading
from collections.abc import Callable, Collection, Generator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from daca_kit.core.clock import as_utc, iso, parse_iso, utcnow
from daca_kit.core.models import COMPLETED, FAILED, Backend, InstanceState
from daca_kit.core.ports import Activity, Workflow, WorkflowStore
from daca_kit.core.workflow import register_when_any
from daca_kit.errors import BackendError, WorkflowError

log = logging.getLogger(__name__)


# -- tasks a workflow yields ------------------------------------------------------------------
class Task:
    """A durable task. `get_result()` after it completed, like Dapr's tasks."""

    _done = False
    _result: Any = None

    def _complete(self, result: Any) -> None:
        self._done, self._result = True, result

    @property
    def is_complete(self) -> bool:
        return self._done

    def get_result(self) -> Any:
        if not self._done:
            raise WorkflowError("get_result() was called on a task that has not completed")
        return self._result


class ActivityTask(Task):
    def __init__(self, name: str, input: Any) -> None:
        self.name, self.input = name, input


class EventTask(Task):
    def __init__(self, name: str) -> None:
        self.name = name


class TimerTask(Task):
    def __init__(self, fire_at: datetime) -> None:
        self.fire_at = fire_at


class WhenAnyTask(Task):
    def __init__(self, tasks: list[Task]) -> None:
        if not tasks or not all(isinstance(t, EventTask | TimerTask) for t in tasks):
            raise WorkflowError("when_any on the local runtime takes external-event and timer tasks")
        self.tasks = tasks


register_when_any(Task, WhenAnyTask)


class ActivityFailed(Exception):
    """Thrown into a workflow when an activity raised; the workflow may catch it."""


class WorkflowContext:
    """What a workflow body sees: the subset of Dapr's DaprWorkflowContext that the kit uses."""

    def __init__(self, instance_id: str, now: datetime) -> None:
        self.instance_id = instance_id
        self._now = now
        self._replaying = False
        self.custom_status: str | None = None

    @property
    def current_utc_datetime(self) -> datetime:
        return self._now

    @property
    def is_replaying(self) -> bool:
        return self._replaying

    def call_activity(self, activity: str | Callable[..., Any], *, input: Any = None) -> ActivityTask:
        name = activity if isinstance(activity, str) else activity.__name__
        return ActivityTask(name, input)

    def wait_for_external_event(self, name: str) -> EventTask:
        return EventTask(name)

    def create_timer(self, fire_at: datetime | timedelta) -> TimerTask:
        if isinstance(fire_at, timedelta):
            fire_at = self._now + fire_at
        return TimerTask(as_utc(fire_at))

    def set_custom_status(self, status: str) -> None:
        self.custom_status = status


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
        # An instance that ends without ever waiting is not written when `recoverable(state)` says its
        # result can be read back elsewhere (a completed chat turn: its `conversation` row).
        self._recoverable = recoverable or (lambda _state: False)
        self._checkpoint_before = frozenset(checkpoint_before)
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="workflow")
        self._memory: dict[str, InstanceState] = {}
        self._memory_lock = threading.Lock()
        self._instance_locks: dict[str, threading.Lock] = {}
        self._changed = threading.Condition()
        self._async_waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]] = {}
        self._listeners: list[Callable[[InstanceState], None]] = []
        self._timers: list[tuple[datetime, str]] = []
        self._timer_cv = threading.Condition()
        self._timer_thread: threading.Thread | None = None
        self._stopped = threading.Event()

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        self._stopped.clear()
        self._timer_thread = threading.Thread(target=self._timer_loop, name="workflow-timers", daemon=True)
        self._timer_thread.start()
        active = self.store.active()
        for row in active:
            state = InstanceState.from_row(row)
            if state.timer_fire_at is not None:
                self._arm_timer(state.timer_fire_at, state.instance_id)
            self._pool.submit(self._advance_safely, state.instance_id)
        if active:
            log.info("resumed %d waiting workflow instance(s)", len(active))

    def close(self) -> None:
        self._stopped.set()
        with self._timer_cv:
            self._timer_cv.notify_all()
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._timer_thread is not None:
            self._timer_thread.join(timeout=5)

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
        outcome = self._execute(state, events, consumed, grew)
        expected_version = state.version  # after a checkpoint (see `_checkpoint`) the instance is stored
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
            self._arm_timer(state.timer_fire_at, state.instance_id)
        self._publish(state)
        return True

    def _execute(
        self, state: InstanceState, events: list[dict[str, Any]], consumed: list[int], grew: list[bool]
    ) -> str:
        """Replays the history then runs new steps. Returns "waiting" or "done"; fills `state`."""
        fn = self.workflows[state.name]
        ctx = WorkflowContext(state.instance_id, state.created_at)
        history = state.history
        pos = 0
        ctx._replaying = bool(history)
        try:
            gen = fn(ctx, state.input)
            if not isinstance(gen, Generator):
                grew.append(True)
                return self._finish(state, ctx, gen)
            send: Any = None
            throw: BaseException | None = None
            while True:
                task = gen.throw(throw) if throw is not None else gen.send(send)
                send, throw = None, None
                if pos < len(history):
                    entry = history[pos]
                    pos += 1
                    ctx._replaying = pos < len(history)
                    ctx._now = parse_iso(entry["at"])
                    send, throw = self._replay(task, entry)
                    continue
                ctx._replaying = False
                now = self.clock()
                if isinstance(task, ActivityTask):
                    if task.name in self._checkpoint_before and state.version is None:
                        self._checkpoint(state, ctx)
                    entry = self._run_activity(state.instance_id, task, now)
                elif isinstance(task, EventTask | TimerTask | WhenAnyTask):
                    resolved = self._resolve(task, events, consumed, now)
                    if resolved is None:
                        state.timer_fire_at = _earliest_timer(task)
                        state.custom_status = ctx.custom_status
                        return "waiting"
                    entry = resolved
                else:
                    raise WorkflowError(
                        f"Workflow '{state.name}' yielded {type(task).__name__}; yield tasks from its context"
                    )
                history.append(entry)
                pos += 1
                grew.append(True)
                ctx._now = now
                send, throw = self._replay(task, entry)
        except StopIteration as stop:
            grew.append(True)
            return self._finish(state, ctx, stop.value)
        except (WorkflowError, BackendError):  # the runtime's own failure (a checkpoint): not the turn's
            raise
        except Exception as exc:  # noqa: BLE001 - the workflow body failed: the instance fails
            log.exception("workflow %s failed", state.instance_id)
            state.runtime_status = FAILED
            state.custom_status = "failed"
            state.timer_fire_at = None
            state.output = {"status": "failed", "reply": None, "error": f"The turn failed: {exc}"}
            grew.append(True)
            return "done"

    def _checkpoint(self, state: InstanceState, ctx: WorkflowContext) -> None:
        """Writes a new instance as it stands, before an activity that lets others act on it."""
        state.custom_status = ctx.custom_status
        state.updated_at = self.clock()
        if not self.store.save(state.to_row(), expected_version=None, consumed_events=[]):
            raise WorkflowError(f"A workflow instance with id '{state.instance_id}' already exists")
        state.version = 1

    def _finish(self, state: InstanceState, ctx: WorkflowContext, output: Any) -> str:
        state.runtime_status = COMPLETED
        state.custom_status = ctx.custom_status
        state.output = output
        state.timer_fire_at = None
        return "done"

    def _run_activity(self, instance_id: str, task: ActivityTask, now: datetime) -> dict[str, Any]:
        fn = self.activities.get(task.name)
        if fn is None:
            raise WorkflowError(f"No activity named '{task.name}' is registered")
        try:
            result = fn(ActivityContext(instance_id, task.name), task.input)
            json.dumps(result)
        except Exception as exc:  # noqa: BLE001 - recorded in history and thrown into the workflow
            log.warning("activity %s of %s failed: %s", task.name, instance_id, exc)
            return {"k": "activity", "name": task.name, "at": iso(now), "error": str(exc)}
        return {"k": "activity", "name": task.name, "at": iso(now), "result": result}

    def _resolve(
        self, task: Task, events: list[dict[str, Any]], consumed: list[int], now: datetime
    ) -> dict[str, Any] | None:
        candidates = task.tasks if isinstance(task, WhenAnyTask) else [task]
        for index, sub in enumerate(candidates):
            if isinstance(sub, EventTask):
                for ev in events:
                    if ev["name"] == sub.name and ev["id"] not in consumed:
                        consumed.append(ev["id"])
                        return {
                            "k": _kind(task),
                            "name": sub.name,
                            "at": iso(now),
                            "winner": index,
                            "result": ev["payload"],
                        }
            elif isinstance(sub, TimerTask) and sub.fire_at <= now:
                return {"k": _kind(task), "at": iso(now), "winner": index, "result": None}
        return None

    def _replay(self, task: Any, entry: dict[str, Any]) -> tuple[Any, BaseException | None]:
        kind = _kind(task)
        if entry.get("k") != kind or (kind == "activity" and entry.get("name") != task.name):
            expected = f"{entry.get('k')} {entry.get('name') or ''}".strip()
            got = f"{kind} {getattr(task, 'name', '')}".strip()
            raise WorkflowError(
                f"Non-deterministic workflow: replay expected '{expected}' but the workflow asked for '{got}'"
            )
        if kind == "activity":
            if "error" in entry:
                return None, ActivityFailed(entry["error"])
            task._complete(entry["result"])
            return entry["result"], None
        if kind == "when_any":
            winner = task.tasks[entry["winner"]]
            winner._complete(entry["result"])
            task._complete(winner)
            return winner, None
        task._complete(entry["result"])
        return entry["result"], None

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

    # -- timers --------------------------------------------------------------------------------
    def _arm_timer(self, fire_at: datetime, instance_id: str) -> None:
        with self._timer_cv:
            heapq.heappush(self._timers, (fire_at, instance_id))
            self._timer_cv.notify()

    def _timer_loop(self) -> None:
        with self._timer_cv:
            while not self._stopped.is_set():
                if not self._timers:
                    self._timer_cv.wait()
                    continue
                fire_at, instance_id = self._timers[0]
                wait = (fire_at - self.clock()).total_seconds()
                if wait > 0:
                    self._timer_cv.wait(min(wait, 3600))
                    continue
                heapq.heappop(self._timers)
                if not self._stopped.is_set():
                    self._pool.submit(self._advance_safely, instance_id)


class ActivityContext:
    """What an activity sees (like Dapr's WorkflowActivityContext)."""

    def __init__(self, workflow_id: str, name: str) -> None:
        self.workflow_id = workflow_id
        self.name = name


def _kind(task: Any) -> str:
    if isinstance(task, ActivityTask):
        return "activity"
    if isinstance(task, WhenAnyTask):
        return "when_any"
    if isinstance(task, EventTask):
        return "event"
    if isinstance(task, TimerTask):
        return "timer"
    return type(task).__name__


def _earliest_timer(task: Task) -> datetime | None:
    tasks = task.tasks if isinstance(task, WhenAnyTask) else [task]
    times = [t.fire_at for t in tasks if isinstance(t, TimerTask)]
    return min(times) if times else None


def _resolve_future(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
