"""The replay engine of the local runtime: runs a workflow generator over its recorded history.

    engine = ReplayEngine(store, workflows=..., activities=..., clock=utcnow, checkpoint_before={...})
    outcome = engine.execute(state, events, consumed, grew)    # "waiting" or "done"; fills `state`

Each yielded task's result is appended to the instance's history; resuming replays the generator from
the start, feeding recorded results, and checks that the same tasks are asked for again (a different
task means the workflow is not deterministic: WorkflowError). New tasks run for real: activities are
called, events are taken from the instance's inbox, timers resolve once due. Saving the result is the
runtime's business (`LocalRuntime`), except the checkpoint written before an activity that lets others
act on the instance.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Generator
from datetime import datetime
from typing import Any

from daca_kit.adapters.local_runtime.tasks import (
    ActivityContext,
    ActivityFailed,
    ActivityTask,
    EventTask,
    Task,
    TimerTask,
    WhenAnyTask,
    WorkflowContext,
    earliest_timer,
    kind_of,
)
from daca_kit.core.clock import iso, parse_iso
from daca_kit.core.models import COMPLETED, FAILED, InstanceState
from daca_kit.core.ports import Activity, Workflow, WorkflowStore
from daca_kit.errors import BackendError, WorkflowError

log = logging.getLogger(__name__)


class ReplayEngine:
    """Replays and advances one instance at a time (the caller holds the instance's lock)."""

    def __init__(
        self,
        store: WorkflowStore,
        *,
        workflows: dict[str, Workflow],
        activities: dict[str, Activity],
        clock: Callable[[], datetime],
        checkpoint_before: Collection[str] = (),
    ) -> None:
        self.store = store
        self.workflows = workflows
        self.activities = activities
        self.clock = clock
        self.checkpoint_before = frozenset(checkpoint_before)
        # Called with the instance id just before a checkpoint writes a new instance (the runtime claims it).
        self.before_checkpoint: Callable[[str], None] = lambda _instance_id: None

    def execute(
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
                    if task.name in self.checkpoint_before and state.version is None:
                        self._checkpoint(state, ctx)
                    entry = self._run_activity(state.instance_id, task, now)
                elif isinstance(task, EventTask | TimerTask | WhenAnyTask):
                    resolved = self._resolve(task, events, consumed, now)
                    if resolved is None:
                        state.timer_fire_at = earliest_timer(task)
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
        self.before_checkpoint(state.instance_id)
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
                            "k": kind_of(task),
                            "name": sub.name,
                            "at": iso(now),
                            "winner": index,
                            "result": ev["payload"],
                        }
            elif isinstance(sub, TimerTask) and sub.fire_at <= now:
                return {"k": kind_of(task), "at": iso(now), "winner": index, "result": None}
        return None

    def _replay(self, task: Any, entry: dict[str, Any]) -> tuple[Any, BaseException | None]:
        kind = kind_of(task)
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
