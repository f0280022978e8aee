"""The Dapr Workflow SDK as the kit meets it: registering the kit's workflow and activities, its logging,
its WorkflowState as the kit's InstanceState, and its gRPC failures as sentences.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from daca_kit.core.clock import as_utc, utcnow
from daca_kit.core.models import COMPLETED, FAILED, RUNNING, InstanceState
from daca_kit.core.workflow import register_when_any
from daca_kit.errors import BackendError, WorkflowError


def register_races() -> None:
    from dapr.ext.workflow import when_any as dapr_when_any
    from dapr.ext.workflow._durabletask.task import Task

    register_when_any(Task, dapr_when_any)


def register_workflow(runtime: Any, fn: Callable[..., Any], name: str) -> None:
    """`runtime.register_workflow(fn, name=name)` for a function another runtime may have registered.

    The SDK marks the function object itself (`_workflow_registered`, `_dapr_alternate_name`) and
    refuses to register a marked function again, which would allow only one runtime per process. The
    marks guard nothing else, so they are cleared first; a different name given elsewhere is refused.
    """
    previous = fn.__dict__.get("_dapr_alternate_name")
    if previous not in (None, name):
        raise WorkflowError(
            f"Workflow {fn.__name__} is already registered with Dapr as '{previous}', not '{name}'"
        )
    fn.__dict__.pop("_workflow_registered", None)
    fn.__dict__.pop("_dapr_alternate_name", None)
    runtime.register_workflow(fn, name=name)


def activity_function(fn: Callable[[Any, Any], Any], name: str) -> Callable[[Any, Any], Any]:
    """A fresh function per registration: the SDK marks what it registers, and a bound method's marks
    land on the class's function, shared by every TurnActivities."""

    def activity(ctx: Any, data: Any) -> Any:
        return fn(ctx, data)

    activity.__name__ = activity.__qualname__ = name
    return activity


def sdk_logging() -> Any:
    """The SDK's loggers through the app's logging: by default each SDK object adds its own console
    handler (every line printed twice). The client's per-call INFO lines ("Waiting up to 0.1s ...")
    are quieted unless the app set that logger's level itself."""
    from dapr.ext.workflow.logger import LoggerOptions

    chatty = logging.getLogger("durabletask-client")
    if chatty.level == logging.NOTSET:
        chatty.setLevel(logging.WARNING)
    return LoggerOptions(log_handler=logging.NullHandler())


def custom_status(raw: str | None) -> str | None:
    # set_custom_status("x") reaches the sidecar as x; a JSON-encoded "x" is accepted too.
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    return value if isinstance(value, str) else raw


def instance_state(ws: Any) -> InstanceState:
    """Dapr's WorkflowState as the kit's InstanceState."""
    from dapr.ext.workflow import WorkflowStatus

    status = ws.runtime_status
    output: Any = json.loads(ws.serialized_output) if ws.serialized_output else None
    if status == WorkflowStatus.COMPLETED:
        runtime_status = COMPLETED
    elif status == WorkflowStatus.FAILED:
        runtime_status = FAILED
        details = ws.failure_details
        reason = details.message if details is not None else "no details"
        output = {"status": "failed", "reply": None, "error": f"The turn failed on Dapr Workflow: {reason}"}
    elif status == WorkflowStatus.TERMINATED:
        runtime_status = FAILED
        output = {"status": "failed", "reply": None, "error": "The turn was terminated before it finished."}
    else:  # RUNNING, PENDING, SUSPENDED, STALLED, UNKNOWN: not finished
        runtime_status = RUNNING
    created = ws.created_at if isinstance(ws.created_at, datetime) else utcnow()
    updated = ws.last_updated_at if isinstance(ws.last_updated_at, datetime) else created
    return InstanceState(
        instance_id=ws.instance_id,
        name=ws.name,
        input=json.loads(ws.serialized_input) if ws.serialized_input else {},
        runtime_status=runtime_status,
        custom_status=custom_status(ws.serialized_custom_status),
        output=output
        if isinstance(output, dict) or output is None
        else {"status": "completed", "reply": output},
        created_at=as_utc(created),
        updated_at=as_utc(updated),
    )


def call_engine(what: str, grpc_address: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`fn(*args, **kwargs)` on the engine: None for an instance it does not know, else its answer.

    Any other gRPC failure leaves as a BackendError that says what could not be done."""
    import grpc

    try:
        return fn(*args, **kwargs)
    except grpc.RpcError as exc:
        code = exc.code() if callable(getattr(exc, "code", None)) else None
        details = exc.details() if callable(getattr(exc, "details", None)) else str(exc)
        if code == grpc.StatusCode.NOT_FOUND or (details and "no such instance exists" in details):
            return None
        raise BackendError(
            f"Could not {what}: the Dapr workflow API at {grpc_address} (DAPR_GRPC_PORT) answered "
            f"{getattr(code, 'name', code)}: {details}; is daprd still running?",
            backend="workflow",
        ) from exc
