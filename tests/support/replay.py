"""Runs a workflow on Dapr's own replay engine, records its history, and replays that history.

    registry = engine_registry(DaprWorkflowRuntime({"chat_turn": chat_turn}, {}))
    recording = record(registry, "chat_turn", turn, activities=fakes, events=[("review_decision", {...})])
    replay(registry, recording)          # raises ReplayMismatch when a replay decides differently

The engine is the one the Dapr Python SDK runs in production: `_OrchestrationExecutor` from the
vendored durabletask worker, given the registry that `WorkflowRuntime.register_workflow` filled (so the
workflow runs through the SDK's own wrapper and `DaprWorkflowContext`). This module plays the part of
daprd: for every work item it hands the executor the committed history (`old_events`) and what happened
since (`new_events`), turns the actions that come back into history events (TaskScheduled,
TimerCreated), answers activities with the given fakes, raises the scenario's external events while the
workflow waits, and fires its timers when asked to.

Each work item already replays everything before it on a fresh generator, as daprd makes the SDK do;
the engine itself raises NonDeterminismError when a replay asks for a different activity or timer
than history holds. `replay` then runs every recorded work item again from the recording and demands
the same decisions (activity names and inputs, timers, custom status, the final result): wall-clock
reads, random numbers or fresh ids in a workflow body show up there even when they only reach an
activity's input or the output, which the engine does not compare.

`EngineWorkflowClient` puts the same engine behind the DaprWorkflowClient calls DaprWorkflowRuntime
makes, so the runtime adapter and a whole Kit can be tested with the real activities and no daprd.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import dapr.ext.workflow._durabletask.internal.helpers as ph
import dapr.ext.workflow._durabletask.internal.protos as pb
import grpc
from dapr.ext.workflow._durabletask import worker
from dapr.ext.workflow._durabletask.internal import shared

START = datetime(2026, 1, 1, 12, 0, 0)  # naive UTC, as the engine's clock is
TICK = timedelta(seconds=1)
_log = logging.getLogger("daca_kit.tests.replay")


class ReplayMismatch(AssertionError):
    """Replaying recorded history made different decisions: the workflow is not deterministic."""


class ScenarioError(AssertionError):
    """The scenario does not give what the workflow waits for."""


@dataclass
class Step:
    """One work item: what the sidecar handed the engine, and what the engine answered."""

    old_events: list[Any]
    new_events: list[Any]
    actions: list[Any]
    custom_status: str | None


@dataclass
class Recording:
    name: str
    instance_id: str
    input: Any
    steps: list[Step] = field(default_factory=list)
    history: list[Any] = field(default_factory=list)
    status: str = "RUNNING"  # COMPLETED or FAILED once finished
    output: Any = None
    failure: tuple[str, str] | None = None  # (error type, message) when FAILED
    activity_calls: list[tuple[str, Any]] = field(default_factory=list)

    @property
    def decisions(self) -> list[tuple[Any, ...]]:
        """Every decision in order: what each work item asked for, with custom statuses."""
        out: list[tuple[Any, ...]] = []
        for step in self.steps:
            out.extend(describe(a) for a in step.actions)
            out.append(("status", step.custom_status))
        return out

    @property
    def activities(self) -> list[str]:
        return [name for name, _ in self.activity_calls]

    @property
    def custom_statuses(self) -> list[str | None]:
        seen: list[str | None] = []
        for step in self.steps:
            if not seen or seen[-1] != step.custom_status:
                seen.append(step.custom_status)
        return seen


def engine_registry(runtime: Any) -> Any:
    """The durabletask registry inside a DaprWorkflowRuntime's WorkflowRuntime (no connection made)."""
    return runtime.workflow_runtime._WorkflowRuntime__worker._registry


def describe(action: Any) -> tuple[Any, ...]:
    """An action as a comparable decision (no stack traces: they are not decisions)."""
    kind = action.WhichOneof("workflowActionType")
    if kind == "scheduleTask":
        task = action.scheduleTask
        data = json.loads(task.input.value) if task.HasField("input") else None
        return (action.id, "activity", task.name, data)
    if kind == "createTimer":
        timer = action.createTimer
        origin = timer.WhichOneof("origin")
        optional = ph.is_optional_timer_action(action)
        fire_at = "never" if optional else timer.fireAt.ToDatetime().isoformat()
        return (action.id, "timer", origin, fire_at)
    if kind == "completeWorkflow":
        done = action.completeWorkflow
        result = json.loads(done.result.value) if done.HasField("result") else None
        failure = (
            (done.failureDetails.errorType, done.failureDetails.errorMessage)
            if done.HasField("failureDetails")
            else None
        )
        return (action.id, "complete", pb.OrchestrationStatus.Name(done.workflowStatus), result, failure)
    return (action.id, kind)


def _execute(registry: Any, instance_id: str, old: list[Any], new: list[Any]) -> Any:
    # A fresh executor per work item, as the worker creates one per request.
    return worker._OrchestrationExecutor(registry, _log).execute(instance_id, old, new)


def _started(at: datetime) -> Any:
    return ph.new_workflow_started_event(at)


class EngineInstance:
    """One workflow instance driven the way daprd drives it: work items over a growing history.

    `run_activity(name, input, task_id)` answers a scheduled activity (raising makes a TaskFailed event).
    """

    def __init__(
        self,
        registry: Any,
        name: str,
        instance_id: str,
        input: Any,
        run_activity: Callable[[str, Any, int], Any],
        *,
        clock: datetime = START,
    ) -> None:
        self.registry = registry
        self.rec = Recording(name=name, instance_id=instance_id, input=input)
        self.run_activity = run_activity
        self.clock = clock
        self.created_at = clock
        self.history: list[Any] = []
        self.new: list[Any] = [
            _started(clock),
            ph.new_execution_started_event(name, instance_id, shared.to_json(input)),
        ]
        self.timers: dict[int, datetime] = {}
        self.custom_status: str | None = None

    @property
    def done(self) -> bool:
        return self.rec.status != "RUNNING"

    def add(self, event: Any) -> None:
        """Queues an event (raised event, fired timer) for the next work item."""
        if not self.new:
            self.new.append(_started(self.clock))
        self.new.append(event)

    def fire_earliest_timer(self) -> bool:
        if not self.timers:
            return False
        timer_id = min(self.timers, key=lambda t: self.timers[t])
        fire_at = self.timers.pop(timer_id)
        self.clock = max(self.clock, fire_at)
        self.add(ph.new_timer_fired_event(timer_id, fire_at))
        return True

    def work_item(self) -> None:
        """Runs one work item on the queued events, commits it, and queues activity results."""
        rec = self.rec
        new, self.new = self.new, []
        results = _execute(self.registry, rec.instance_id, self.history, new)
        actions = list(results.actions)
        rec.steps.append(Step(list(self.history), list(new), actions, results.encoded_custom_status))
        self.custom_status = results.encoded_custom_status
        self.history = self.history + new
        self.clock += TICK
        follow_up: list[Any] = []
        for action in actions:
            kind = action.WhichOneof("workflowActionType")
            if kind == "scheduleTask":
                task = action.scheduleTask
                self.history.append(
                    ph.new_task_scheduled_event(action.id, task.name, task.input.value or None)
                )
                data = shared.from_json(task.input.value) if task.HasField("input") else None
                rec.activity_calls.append((task.name, data))
                try:
                    result = self.run_activity(task.name, data, action.id)
                except Exception as exc:  # noqa: BLE001 - becomes a TaskFailed event, like a failed activity
                    follow_up.append(ph.new_task_failed_event(action.id, exc))
                else:
                    follow_up.append(ph.new_task_completed_event(action.id, shared.to_json(result)))
            elif kind == "createTimer":
                timer = action.createTimer
                origin = getattr(timer, timer.WhichOneof("origin")) if timer.WhichOneof("origin") else None
                self.history.append(ph.new_timer_created_event(action.id, timer.fireAt, origin))
                if not ph.is_optional_timer_action(action):  # the sentinel timer never fires
                    self.timers[action.id] = timer.fireAt.ToDatetime()
            elif kind == "completeWorkflow":
                done = action.completeWorkflow
                rec.status = pb.OrchestrationStatus.Name(done.workflowStatus).removeprefix(
                    "ORCHESTRATION_STATUS_"
                )
                rec.output = json.loads(done.result.value) if done.HasField("result") else None
                if done.HasField("failureDetails"):
                    rec.failure = (done.failureDetails.errorType, done.failureDetails.errorMessage)
                rec.history = self.history
                self.timers.clear()
                return
            else:
                raise ScenarioError(f"the harness does not simulate {kind} actions")
        for event in follow_up:
            self.add(event)

    def run(self, max_steps: int = 50) -> None:
        """Runs work items while there are events to process."""
        for _ in range(max_steps):
            if self.done or not self.new:
                return
            self.work_item()
        raise ScenarioError(f"{self.rec.name} did not settle within {max_steps} work items")


def record(
    registry: Any,
    name: str,
    input: Any,
    *,
    activities: Mapping[str, Callable[[Any], Any]],
    events: Iterable[tuple[str, Any]] = (),
    fire_timers: bool = False,
    instance_id: str = "turn-0001",
    max_steps: int = 50,
) -> Recording:
    """Runs `name` to its end the way daprd drives it, recording every work item.

    `activities` answer scheduled activities (a fake raising makes a TaskFailed event). `events` are
    raised, in order, each time the workflow has nothing else to wait for; with `fire_timers`, its
    earliest timer fires when no event is left.
    """
    instance = EngineInstance(registry, name, instance_id, input, lambda n, data, _id: activities[n](data))
    waiting_events = list(events)
    for _ in range(max_steps):
        instance.run(max_steps)
        if instance.done:
            failure = instance.rec.failure
            if failure is not None and failure[0] == "NonDeterminismError":
                raise ReplayMismatch(f"the engine found a replay mismatch while recording: {failure[1]}")
            return instance.rec
        if waiting_events:
            event_name, payload = waiting_events.pop(0)
            instance.add(ph.new_event_raised_event(event_name, shared.to_json(payload)))
        elif not (fire_timers and instance.fire_earliest_timer()):
            raise ScenarioError(
                f"{name} waits (custom status {instance.custom_status!r}) for an event or timer the scenario does not give"
            )
    raise ScenarioError(f"{name} did not finish within {max_steps} work items")


def replay(registry: Any, recording: Recording) -> None:
    """Replays every recorded work item on fresh generators, then the whole history at once.

    Raises ReplayMismatch naming the first work item whose decisions differ from the recording.
    """
    for index, step in enumerate(recording.steps):
        results = _execute(registry, recording.instance_id, step.old_events, step.new_events)
        got = [describe(a) for a in results.actions]
        want = [describe(a) for a in step.actions]
        _compare(index, want, got, step.custom_status, results.encoded_custom_status, step)
    # The finished history alone must bring the workflow to the same end, with nothing new asked for.
    final = _execute(registry, recording.instance_id, recording.history, [_started(START + TICK * 10_000)])
    got = [describe(a) for a in final.actions]
    want = [
        describe(a)
        for a in recording.steps[-1].actions
        if a.WhichOneof("workflowActionType") == "completeWorkflow"
    ]
    if got != want:
        raise ReplayMismatch(
            f"replaying the whole history ended with {got}, but the recorded run ended with {want}"
        )


def _compare(
    index: int, want: list[Any], got: list[Any], want_status: Any, got_status: Any, step: Step
) -> None:
    failure = next((g for g in got if g[1] == "complete" and g[4] and g[4][0] == "NonDeterminismError"), None)
    if failure is not None:
        raise ReplayMismatch(f"work item {index}: the engine refused the replay: {failure[4][1]}")
    if want != got or want_status != got_status:
        raise ReplayMismatch(
            f"work item {index} ({len(step.old_events)} events of history, {len(step.new_events)} new) decided "
            f"differently on replay:\n  recorded: {want} status={want_status!r}\n  replayed: {got} status={got_status!r}"
        )


class SidecarDown(grpc.RpcError):
    """What the SDK's client raises when nothing answers at the sidecar's gRPC port."""

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return "failed to connect to all addresses (the test stopped the sidecar)"


class EngineWorkflowClient:
    """An in-process stand-in for `DaprWorkflowClient` and the daprd behind it, on the same engine.

        client = EngineWorkflowClient()
        runtime = DaprWorkflowRuntime(workflows, activities, client=client)
        client.registry = engine_registry(runtime)      # the workflows and activities just registered

    Instances advance one work item at a time on one background thread (as daprd runs one work item
    per instance at a time); activities are the registered ones, called through the SDK's wrappers.
    Answers with the SDK's own `WorkflowState`. Timers fire only when a test calls `fire_timers`.
    `calls` records every client call, to check what a waiting turn costs; while `down` is set every
    call fails as a stopped sidecar's would (gRPC UNAVAILABLE).
    """

    def __init__(self, registry: Any = None) -> None:
        import queue
        import threading

        self.registry = registry
        self.instances: dict[str, EngineInstance] = {}
        self.calls: list[tuple[str, str]] = []
        self.down = False
        self._changed = threading.Condition()
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="engine-workflow-client", daemon=True)
        self._thread.start()

    # -- the DaprWorkflowClient surface the adapter uses ------------------------------------------
    def schedule_new_workflow(
        self, workflow: Any, *, input: Any = None, instance_id: str | None = None, **_: Any
    ) -> str:
        name = workflow if isinstance(workflow, str) else workflow.__name__
        instance_id = instance_id or f"instance-{len(self.instances) + 1}"
        self.calls.append(("schedule_new_workflow", instance_id))
        self._answer()
        with self._changed:
            if instance_id in self.instances and not self.instances[instance_id].done:
                raise RuntimeError(f"an active workflow with ID '{instance_id}' already exists")
            self.instances[instance_id] = EngineInstance(
                self.registry,
                name,
                instance_id,
                input,
                lambda n, data, task_id: self._activity(instance_id, n, data, task_id),
            )
        self._queue.put(instance_id)
        return instance_id

    def get_workflow_state(self, instance_id: str, *, fetch_payloads: bool = True, **_: Any) -> Any:
        self.calls.append(("get_workflow_state", instance_id))
        self._answer()
        with self._changed:
            return self._state(instance_id)

    def wait_for_workflow_completion(
        self, instance_id: str, *, fetch_payloads: bool = True, timeout_in_seconds: float = 0, **_: Any
    ) -> Any:
        self.calls.append(("wait_for_workflow_completion", instance_id))
        self._answer()
        with self._changed:
            finished = self._changed.wait_for(
                lambda: instance_id not in self.instances or self.instances[instance_id].done,
                timeout=timeout_in_seconds or None,
            )
            if not finished:
                raise TimeoutError("Timed-out waiting for the orchestration to complete")
            return self._state(instance_id)

    def raise_workflow_event(self, instance_id: str, event_name: str, *, data: Any = None, **_: Any) -> None:
        self.calls.append(("raise_workflow_event", instance_id))
        self._answer()
        with self._changed:
            instance = self.instances.get(instance_id)
            if instance is None or instance.done:
                return  # as daprd: events for finished or unknown instances are dropped
            instance.add(ph.new_event_raised_event(event_name, shared.to_json(data) if data else None))
        self._queue.put(instance_id)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(5)

    def _answer(self) -> None:
        if self.down:
            raise SidecarDown()

    # -- test controls -------------------------------------------------------------------------------
    def fire_timers(self, instance_id: str) -> None:
        """Fires the instance's earliest timer now (as if its time had come)."""
        with self._changed:
            self.instances[instance_id].fire_earliest_timer()
        self._queue.put(instance_id)

    def idle(self, timeout: float = 5.0) -> None:
        """Returns once every queued work item ran."""
        import time

        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    # -- internals -------------------------------------------------------------------------------
    def _activity(self, instance_id: str, name: str, data: Any, task_id: int) -> Any:
        from dapr.ext.workflow._durabletask import task

        fn = self.registry.get_activity(name)
        if fn is None:
            raise RuntimeError(f"activity '{name}' is not registered")
        return fn(task.ActivityContext(instance_id, task_id), data)

    def _loop(self) -> None:
        while True:
            instance_id = self._queue.get()
            try:
                if instance_id is None:
                    return
                with self._changed:  # one work item at a time; raised events wait for it
                    self.instances[instance_id].run()
                    self._changed.notify_all()
            except Exception:  # noqa: BLE001 - a broken work item is a test failure, not a dead thread
                _log.exception("work item for %s failed", instance_id)
            finally:
                self._queue.task_done()

    def _state(self, instance_id: str) -> Any:
        from dapr.ext.workflow import WorkflowState
        from dapr.ext.workflow._durabletask import client
        from dapr.ext.workflow._durabletask.task import FailureDetails

        instance = self.instances.get(instance_id)
        if instance is None:
            return None
        rec = instance.rec
        failure = FailureDetails(rec.failure[1], rec.failure[0], None) if rec.failure else None
        return WorkflowState(
            client.WorkflowState(
                instance_id,
                rec.name,
                client.OrchestrationStatus[rec.status],
                instance.created_at,
                instance.clock,
                shared.to_json(rec.input),
                shared.to_json(rec.output) if rec.output is not None else None,
                instance.custom_status,
                failure,
            )
        )
