"""What a workflow body yields and sees on the local runtime: durable tasks and the context objects.

    task = ctx.call_activity("generate_reply", input=turn)       # an ActivityTask
    winner = yield when_any([ctx.wait_for_external_event("review_decision"), ctx.create_timer(deadline)])

The same subset of Dapr's workflow API that the kit's workflow uses, so one definition runs on both.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from daca_kit.core.clock import as_utc
from daca_kit.core.workflow import register_when_any
from daca_kit.errors import WorkflowError


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


class ActivityContext:
    """What an activity sees (like Dapr's WorkflowActivityContext)."""

    def __init__(self, workflow_id: str, name: str) -> None:
        self.workflow_id = workflow_id
        self.name = name


def kind_of(task: Any) -> str:
    if isinstance(task, ActivityTask):
        return "activity"
    if isinstance(task, WhenAnyTask):
        return "when_any"
    if isinstance(task, EventTask):
        return "event"
    if isinstance(task, TimerTask):
        return "timer"
    return type(task).__name__


def earliest_timer(task: Task) -> datetime | None:
    tasks = task.tasks if isinstance(task, WhenAnyTask) else [task]
    times = [t.fire_at for t in tasks if isinstance(t, TimerTask)]
    return min(times) if times else None
