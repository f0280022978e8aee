"""The kit's workflow runtime on Dapr Workflow (`DACA_RUNTIME=dapr`), over the SDK's gRPC client.

    runtime = DaprWorkflowRuntime.from_settings(settings, workflows={"chat_turn": chat_turn},
                                                activities=activities.as_dict())

It registers the kit's one workflow definition (the same `chat_turn` function the local runtime runs)
with Dapr Workflow and offers the `WorkflowRuntime` port on top of `DaprWorkflowClient`. Review
decisions reach the engine through the workflow inbox: written with the decision, raised by
`InboxDelivery` (`daca_kit.adapters.dapr.inbox`) and deleted once Dapr accepted them.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import httpx

from daca_kit.adapters.dapr.inbox import InboxDelivery
from daca_kit.adapters.dapr.sdk import (
    activity_function,
    call_engine,
    instance_state,
    register_races,
    register_workflow,
    sdk_logging,
)
from daca_kit.adapters.dapr.sidecar import DAPR_RUN, DaprSidecar, checked_sidecar, require_sidecar
from daca_kit.core.models import Backend, InstanceState
from daca_kit.core.ports import WorkflowStore
from daca_kit.errors import BackendError, WorkflowError

if TYPE_CHECKING:
    from daca_kit.settings import Settings

log = logging.getLogger(__name__)

SETTLED_STATUSES = ("pending_review",)


class DaprWorkflowRuntime:
    """The kit's workflow runtime on Dapr Workflow, with LocalRuntime's interface.

        runtime = DaprWorkflowRuntime({"chat_turn": chat_turn}, activities.as_dict())
        runtime.start()                                   # opens the work-item stream to daprd (gRPC)
        state = runtime.schedule("chat_turn", instance_id, turn)

    `schedule` returns once the turn completed or waits for a reviewer (custom status
    `pending_review`), or after `settle_timeout` seconds with the turn still running. The gRPC address
    is the SDK's: DAPR_GRPC_ENDPOINT, or DAPR_RUNTIME_HOST:DAPR_GRPC_PORT (127.0.0.1:50001).

    Events for instances (a review decision) come from `inbox`, the workflow inbox table: `notify`
    wakes the delivery thread, which raises them on the engine (see `daca_kit.adapters.dapr.inbox`).

    Listeners (`on_change`) hear of a change when this process observes it: in `schedule`, `get`,
    `wait`, and after an event was raised (a short-lived thread waits for the resumed turn to finish).
    A turn waiting for a reviewer costs no calls until the decision is raised.

    `client` replaces the SDK's DaprWorkflowClient (the tests pass Dapr's engine running in process);
    `start()` then opens no stream to a sidecar.
    """

    name = "dapr"
    backend = Backend("dapr", "dapr", "Dapr Workflow")

    def __init__(
        self,
        workflows: Mapping[str, Callable[..., Any]],
        activities: Mapping[str, Callable[[Any, Any], Any]],
        *,
        inbox: WorkflowStore | None = None,
        sidecar: DaprSidecar | None = None,
        grpc_host: str | None = None,
        grpc_port: str | None = None,
        settle_timeout: float = 60.0,
        start_timeout: float = 15.0,
        watch_timeout: float = 120.0,
        client: Any = None,
    ) -> None:
        from dapr.ext.workflow import WorkflowRuntime
        from dapr.ext.workflow.util import getAddress

        self.workflows = dict(workflows)
        self.activities = dict(activities)
        self.sidecar = sidecar
        self.grpc_host, self.grpc_port = grpc_host, grpc_port
        self.grpc_address = getAddress(grpc_host, grpc_port)
        self.settle_timeout = settle_timeout
        self.start_timeout = start_timeout
        self.watch_timeout = watch_timeout
        register_races()
        self.workflow_runtime = WorkflowRuntime(
            host=grpc_host, port=grpc_port, logger_options=sdk_logging(), worker_ready_timeout=start_timeout
        )
        for name, fn in self.workflows.items():
            register_workflow(self.workflow_runtime, fn, name)
        for name, fn in self.activities.items():
            self.workflow_runtime.register_activity(activity_function(fn, name), name=name)
        # A client given here (an in-process engine in tests) replaces the sidecar: start() opens nothing.
        self._given_client = client
        self._client: Any = None
        self._listeners: list[Callable[[InstanceState], None]] = []
        self._seen: OrderedDict[str, tuple[str, str | None]] = OrderedDict()
        self._seen_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="dapr-workflow-wait")
        self.delivery = InboxDelivery(inbox, raise_event=self.deliver) if inbox is not None else None
        self._started = False
        self._closing = False

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        workflows: Mapping[str, Callable[..., Any]],
        activities: Mapping[str, Callable[[Any, Any], Any]],
        inbox: WorkflowStore,
        wait: float | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> DaprWorkflowRuntime:
        sidecar = checked_sidecar(settings, wait=wait, transport=transport)
        return cls(workflows, activities, inbox=inbox, sidecar=sidecar)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Checks the sidecar, then opens the worker's stream; raises ConfigError/BackendError sentences."""
        if self._started:
            return
        if self._given_client is not None:
            self._client, self._started = self._given_client, True
            self._start_delivery()
            return
        if self.sidecar is not None:
            require_sidecar(self.sidecar, wait=0)
        failure: list[BaseException] = []

        def run() -> None:
            try:
                self.workflow_runtime.start()
            except BaseException as exc:  # noqa: BLE001 - reported by the waiting thread below
                failure.append(exc)

        # The SDK's start() blocks until the stream is open, without a limit: bound it here.
        starter = threading.Thread(target=run, name="dapr-workflow-start", daemon=True)
        starter.start()
        starter.join(self.start_timeout + 1.0)
        if starter.is_alive() or failure:
            reason = "" if starter.is_alive() else f" ({failure[0]})"
            self.workflow_runtime.shutdown()
            starter.join(5.0)
            raise BackendError(
                f"The Dapr workflow engine at {self.grpc_address} (DAPR_GRPC_PORT) did not open a work-item stream "
                f"within {self.start_timeout:g} s{reason}: check that daprd runs with placement and scheduler "
                f'(`dapr init`, then `{DAPR_RUN}`) and that its state store has actorStateStore: "true"',
                backend="workflow",
            )
        from dapr.ext.workflow import DaprWorkflowClient

        self._client = DaprWorkflowClient(
            host=self.grpc_host, port=self.grpc_port, logger_options=sdk_logging()
        )
        self._started = True
        self._start_delivery()

    def _start_delivery(self) -> None:
        if self.delivery is not None:
            self.delivery.start()

    def close(self) -> None:
        self._closing = True
        if self.delivery is not None:
            self.delivery.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._client is not None:  # closing its channel cancels the waits still running in the pool
            self._client.close()
            self._client = None
        if self._started:
            self._started = False
            if self._given_client is None:
                self.workflow_runtime.shutdown()
        if self.sidecar is not None:
            self.sidecar.close()

    def on_change(self, listener: Callable[[InstanceState], None]) -> None:
        """Calls `listener(state)` whenever this process observes an instance change status."""
        self._listeners.append(listener)

    # -- the runtime's API ------------------------------------------------------------------------
    def schedule(self, name: str, instance_id: str, input: dict[str, Any]) -> InstanceState:
        """Starts an instance and waits until it completes, waits for a reviewer, or `settle_timeout`."""
        if name not in self.workflows:
            raise WorkflowError(f"No workflow named '{name}' is registered")
        client = self._require_client()
        self._call(
            "start the chat turn", client.schedule_new_workflow, name, input=input, instance_id=instance_id
        )
        deadline = time.monotonic() + self.settle_timeout
        step = 0.1
        state: InstanceState | None = None
        while (left := deadline - time.monotonic()) > 0:
            # Completion is a server-side long poll; a review wait shows only in the custom status.
            state = self.wait(instance_id, min(step, left))
            if state is None or state.is_terminal or state.custom_status in SETTLED_STATUSES:
                break
            step = min(step * 2, 2.0)
        return state or InstanceState(instance_id=instance_id, name=name, input=input)

    def get(self, instance_id: str) -> InstanceState | None:
        client = self._require_client()
        ws = self._call("read the chat turn", client.get_workflow_state, instance_id, fetch_payloads=True)
        return self._observe(ws)

    def notify(self, instance_id: str) -> None:
        """Has the delivery thread raise the events just written to the inbox (see `deliver`)."""
        if self.delivery is not None:
            self.delivery.wake()

    def deliver(self, event: dict[str, Any]) -> None:
        """Raises one inbox event on its instance; a background wait then reports the resumed turn's end.

        Raises BackendError while the engine cannot take it (the event stays in the inbox); an event
        for an instance that is gone or has ended is dropped, since nothing waits for it any more.
        """
        client = self._require_client()
        instance_id = event["instance_id"]
        try:
            self._call(
                "resume the chat turn",
                client.raise_workflow_event,
                instance_id,
                event["name"],
                data=event["payload"],
            )
        except BackendError:
            state = self.get(instance_id)  # BackendError too while the sidecar is down: retried
            if state is not None and not state.is_terminal:
                raise
            log.info("dropped event %s for workflow %s: the turn has ended", event["name"], instance_id)
            return
        try:
            self._pool.submit(self._watch, instance_id)
        except RuntimeError:  # closed
            pass

    def wait(self, instance_id: str, timeout: float) -> InstanceState | None:
        """Blocks until the instance ends or `timeout` seconds pass; returns its latest state."""
        if timeout <= 0:  # the SDK reads a zero timeout as "wait forever"
            return self.get(instance_id)
        client = self._require_client()
        try:
            ws = self._call(
                "wait for the chat turn",
                client.wait_for_workflow_completion,
                instance_id,
                fetch_payloads=True,
                timeout_in_seconds=timeout,
            )
        except TimeoutError:
            return self.get(instance_id)
        return self._observe(ws)

    async def wait_async(self, instance_id: str, timeout: float) -> InstanceState | None:
        """`wait` on one of the runtime's threads, so the event loop is free meanwhile."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.wait, instance_id, timeout)

    # -- internals -------------------------------------------------------------------------------
    def ping(self) -> None:
        """BackendError until the work-item stream to the engine is open (see `start`)."""
        self._require_client()

    def _require_client(self) -> Any:
        if self._client is None:
            # The app opens the stream once it listens (daprd may wait for the app's port first).
            raise BackendError(
                f"Dapr Workflow is not connected: the work-item stream to {self.grpc_address} "
                "(DAPR_GRPC_PORT) is not open yet. Try again in a few seconds; if this lasts, the app's "
                "log says why the workflow runtime did not start.",
                backend="workflow",
            )
        return self._client

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return call_engine(what, self.grpc_address, fn, *args, **kwargs)

    def _watch(self, instance_id: str) -> None:
        try:
            self.wait(instance_id, self.watch_timeout)
        except Exception:  # noqa: BLE001 - a background watch must never die silently
            if not self._closing:
                log.exception("watching workflow %s failed", instance_id)

    def _observe(self, ws: Any) -> InstanceState | None:
        if ws is None:
            return None
        state = instance_state(ws)
        key = (state.runtime_status, state.custom_status)
        with self._seen_lock:
            if self._seen.get(state.instance_id) == key:
                return state
            self._seen[state.instance_id] = key
            self._seen.move_to_end(state.instance_id)
            while len(self._seen) > 10_000:
                self._seen.popitem(last=False)
        for listener in self._listeners:
            try:
                listener(state)
            except Exception:  # noqa: BLE001 - a listener must not break the runtime
                log.exception("workflow listener failed")
        return state
