"""A TEST STAND-IN for daprd's workflow engine, NOT daprd: durabletask's in-memory gRPC server
(`durabletask.testing`, PyPI `durabletask`), bridged to the dialect of the protocol that Dapr's SDK speaks.

    with DurableTaskEngine() as engine:             # a child process on a free loopback port
        runtime = DaprWorkflowRuntime(..., grpc_host="127.0.0.1", grpc_port=engine.port)
        runtime.start()                             # the SDK opens its work-item stream over gRPC

Why a child process: `durabletask` and the Dapr SDK's vendored copy of it register protobuf messages of
the same names, and one process cannot import both. The server runs here as `python THIS_FILE --port 0`
and prints the port it listens on.

Both sides speak the durable-task sidecar protocol (`TaskHubSidecarService`), but Dapr's fork of it has
diverged. The bridge below rewrites only what was found to differ, found by comparing the two sets of
descriptors field by field and by running the kit's workflow through it:

- Dapr's `ScheduleTaskAction` carries `taskExecutionId` as field 5 (a string) where durabletask has
  `parentTraceContext` (a message); Dapr's action carries `router` as field 9 where durabletask has
  `rewindOrchestration` (the server would rewind the instance); Dapr's `OrchestratorResponse` field 6 is a
  version record where durabletask has a trace context. The bridge drops these fields on the way in.
- The server appends an `orchestratorCompleted` event after each work item (field 15, which Dapr's
  protocol calls `workflowCompleted`); Dapr's SDK has no handler for it and fails every turn ("Don't know
  how to handle event of type 'workflowCompleted'"). The bridge leaves it out of the histories it sends.
- Dapr's SDK waits for an event without a timeout by scheduling a timer at a sentinel time
  (9999-12-31T23:59:59.999999999Z) that it recognises again on replay. The server keeps timer times as
  Python datetimes (microseconds), so the replay no longer finds its timer and the turn fails
  (NonDeterminismError), and it starts a thread that dies sleeping 8,000 years: the bridge records the
  sentinel timer to the nanosecond and never fires it.
- Without the field rewrites the server cannot read the SDK's results at all ("Exception deserializing
  request!") and every turn stays RUNNING.

What this stand-in does not show (placement, actor reminders, the scheduler service, state in a real
actor state store, daprd's own dialect beyond the fields above) still needs a real daprd: see the README.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

SENTINEL_SECONDS = 253402300799  # Dapr SDK's OPTIONAL_TIMER_FIRE_AT (with 999999999 nanoseconds)
SENTINEL_NANOS = 999999999
COMPLETE_ORCHESTRATOR_TASK = "/TaskHubSidecarService/CompleteOrchestratorTask"
GET_WORK_ITEMS = "/TaskHubSidecarService/GetWorkItems"


# -- the protobuf wire format, just enough to drop fields by number --------------------------------------
def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        bits, value = value & 0x7F, value >> 7
        out.append(bits | (0x80 if value else 0))
        if not value:
            return bytes(out)


def rewrite(
    buf: bytes,
    *,
    drop: frozenset[int] = frozenset(),
    inner: dict[int, Callable[[bytes], bytes]] | None = None,
) -> bytes:
    """`buf` without the fields numbered in `drop`, with length-delimited fields in `inner` rewritten."""
    inner = inner or {}
    out = bytearray()
    pos = 0
    while pos < len(buf):
        start = pos
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        payload: bytes | None = None
        if wire == 0:
            _, pos = _read_varint(buf, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length, body = _read_varint(buf, pos)
            pos = body + length
            payload = buf[body:pos]
        else:
            raise ValueError(f"wire type {wire} (groups) is not used by this protocol")
        if number in drop:
            continue
        if payload is not None and number in inner:
            new = inner[number](payload)
            out += _varint(key) + _varint(len(new)) + new
        else:
            out += buf[start:pos]
    return bytes(out)


def _schedule_task(buf: bytes) -> bytes:
    return rewrite(buf, drop=frozenset({5}))  # Dapr's taskExecutionId


def _action(buf: bytes) -> bytes:
    return rewrite(buf, drop=frozenset({9}), inner={2: _schedule_task})  # Dapr's router


def dapr_response_for_engine(buf: bytes) -> bytes:
    """An OrchestratorResponse from Dapr's SDK, as durabletask's server can read it."""
    return rewrite(buf, drop=frozenset({6}), inner={2: _action})


# -- the server (child process only: imports durabletask) -----------------------------------------------
def serve(port: int) -> None:
    from concurrent import futures
    from datetime import UTC, datetime

    import durabletask.internal.helpers as helpers
    import durabletask.internal.orchestrator_service_pb2 as pb
    import durabletask.internal.orchestrator_service_pb2_grpc as stubs
    import grpc
    from durabletask.testing import InMemoryOrchestrationBackend

    class Engine(InMemoryOrchestrationBackend):
        def _process_create_timer_action(self, instance: Any, action: Any) -> None:
            fire_at = action.createTimer.fireAt
            if fire_at.seconds != SENTINEL_SECONDS:
                super()._process_create_timer_action(instance, action)
                return
            # Dapr's "wait without a timeout" timer: recorded to the nanosecond, never fired.
            event = helpers.new_timer_created_event(action.id, datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC))
            event.timerCreated.fireAt.CopyFrom(fire_at)
            instance.history.append(event)
            if instance.status == pb.ORCHESTRATION_STATUS_PENDING:
                instance.status = pb.ORCHESTRATION_STATUS_RUNNING

    def for_dapr(item: Any) -> Any:
        if item.HasField("orchestratorRequest"):
            request = item.orchestratorRequest
            for events in (request.pastEvents, request.newEvents):
                kept = [e for e in events if not e.HasField("orchestratorCompleted")]
                del events[:]
                events.extend(kept)
        return item

    class Bridge(grpc.ServerInterceptor):
        def intercept_service(self, continuation: Any, details: Any) -> Any:
            handler = continuation(details)
            if handler is None:
                return None
            if details.method == COMPLETE_ORCHESTRATOR_TASK:
                read = handler.request_deserializer
                return grpc.unary_unary_rpc_method_handler(
                    handler.unary_unary,
                    request_deserializer=lambda raw: read(dapr_response_for_engine(raw)),
                    response_serializer=handler.response_serializer,
                )
            if details.method == GET_WORK_ITEMS:
                write = handler.response_serializer
                return grpc.unary_stream_rpc_method_handler(
                    handler.unary_stream,
                    request_deserializer=handler.request_deserializer,
                    response_serializer=lambda item: write(for_dapr(item)),
                )
            return handler

    engine = Engine(port=port)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), interceptors=[Bridge()])
    stubs.add_TaskHubSidecarServiceServicer_to_server(engine, server)  # type: ignore[no-untyped-call]
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print(f"listening {bound}", flush=True)
    try:
        sys.stdin.read()  # until the parent closes our stdin (or dies)
    finally:
        engine.stop(grace=0.5)
        server.stop(0.5).wait()


# -- the parent's handle ---------------------------------------------------------------------------------
class DurableTaskEngine:
    """Runs the stand-in engine in a child process for the duration of a `with` block.

    `port` is its gRPC port on 127.0.0.1 (as a string, like DAPR_GRPC_PORT); `log` collects its output.
    """

    def __init__(self, log_path: Path | None = None, start_timeout: float = 30.0) -> None:
        self.log_path = log_path
        self.start_timeout = start_timeout
        self.port = ""
        self._proc: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None

    def __enter__(self) -> DurableTaskEngine:
        self._log = open(self.log_path, "a") if self.log_path else None  # noqa: SIM115 - closed in __exit__
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._proc = subprocess.Popen(
            [sys.executable, __file__, "--port", "0"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log or subprocess.DEVNULL,
            text=True,
            env=env,
        )
        deadline = time.monotonic() + self.start_timeout
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()  # the child prints its port once it listens
        if not line.startswith("listening ") or time.monotonic() > deadline:
            self.__exit__(None, None, None)
            raise RuntimeError(f"the durabletask engine did not start (said {line!r}); see {self.log_path}")
        self.port = line.split()[1]
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._proc is not None:
            if self._proc.stdin is not None:
                self._proc.stdin.close()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    serve(parser.parse_args().port)
