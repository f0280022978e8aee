"""Dapr mode run live over gRPC: the kit's own Dapr adapter against a durable-task engine in another process.

The engine is a TEST STAND-IN, not daprd: durabletask's in-memory sidecar server, bridged to Dapr's
dialect of the protocol (tests/support/durabletask_engine.py says what the bridge rewrites and why).
`DaprWorkflowRuntime` is built and started the way the app does it (`bootstrap` with DACA_RUNTIME=dapr):
it opens its work-item stream over gRPC to the engine, and its `DaprWorkflowClient` schedules, reads,
waits for and resumes turns over gRPC. State and pub/sub go to the sidecar HTTP stub
(tests/support/dapr_sidecar_stub.py). The last test runs the real app (`daca-kit serve`) in Dapr mode
against both, end to end over HTTP. What this cannot show, and still needs a real daprd, is in the README.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from daca_kit.adapters.dapr.workflow import DaprWorkflowRuntime
from daca_kit.bootstrap import bootstrap
from daca_kit.core.kit import Kit
from daca_kit.core.streaming import StreamEvent, stream_turn
from daca_kit.core.workflow import REJECTED_REPLY, TIMED_OUT_REPLY
from daca_kit.errors import AlreadyDecided
from daca_kit.settings import Settings
from tests.support.appproc import AppProcess, eventually
from tests.support.dapr_sidecar_stub import DaprSidecarStub
from tests.support.durabletask_engine import DurableTaskEngine


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DurableTaskEngine]:
    log = tmp_path_factory.mktemp("engine") / "durabletask-engine.log"
    with DurableTaskEngine(log) as running:
        yield running


@pytest.fixture
def sidecar() -> Iterator[DaprSidecarStub]:
    with DaprSidecarStub() as stub:
        yield stub


@pytest.fixture
def dapr_settings(
    settings_factory: Any,
    engine: DurableTaskEngine,
    sidecar: DaprSidecarStub,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., Settings]:
    """Settings for Dapr mode on the engine's gRPC port (the SDK reads it from the environment)."""
    monkeypatch.setenv("DAPR_RUNTIME_HOST", "127.0.0.1")
    monkeypatch.setenv("DAPR_GRPC_PORT", engine.port)
    monkeypatch.delenv("DAPR_GRPC_ENDPOINT", raising=False)

    def make(review_timeout: str = "1h") -> Settings:
        return settings_factory(
            runtime="dapr", dapr_http_endpoint=sidecar.url, chat_wait=0, review_timeout=review_timeout
        )

    return make


@pytest.fixture
def dapr_kit(dapr_settings: Callable[..., Settings]) -> Iterator[Kit]:
    """A Kit in Dapr mode, built and started as the app builds and starts it."""
    kit = bootstrap(dapr_settings()).start()
    assert kit.pushed_events is not None
    yield kit
    kit.close()


def deliver_published(kit: Kit, sidecar: DaprSidecarStub) -> None:
    """Hands the events published so far to the app's subscriber, as daprd pushes them."""
    assert kit.relay is not None and kit.relay.wait_idle(10)
    assert kit.pushed_events is not None
    for _pubsub, topic, _type, event in list(sidecar.published):
        assert kit.pushed_events.deliver(topic, event) == "SUCCESS"


def test_the_runtime_opens_its_work_item_stream_to_the_engine(
    dapr_kit: Kit, engine: DurableTaskEngine
) -> None:
    runtime = dapr_kit.runtime
    assert isinstance(runtime, DaprWorkflowRuntime)
    assert runtime.grpc_address == f"127.0.0.1:{engine.port}"
    assert runtime._given_client is None  # the SDK's own DaprWorkflowClient, over gRPC
    assert dapr_kit.health()["backends"]["workflow"]["ok"]


def test_a_plain_turn_completes_and_is_counted_once(dapr_kit: Kit, sidecar: DaprSidecarStub) -> None:
    result = dapr_kit.submit("alice", "Hello over gRPC")
    assert result.status == "completed" and result.reply
    assert dapr_kit.conversations("alice")[0]["reply"] == result.reply
    state = dapr_kit.runtime.get(result.instance_id)
    assert state is not None and state.runtime_status == "COMPLETED" and state.custom_status == "completed"
    deliver_published(dapr_kit, sidecar)
    deliver_published(dapr_kit, sidecar)  # a redelivery does not count twice
    assert dapr_kit.message_count("alice") == 1
    assert [e[1] for e in sidecar.published] == ["messages"]


def test_a_streaming_turn_hears_its_pieces_from_the_engines_activity(dapr_kit: Kit) -> None:
    """The engine hands the model activity to this process's worker: its pieces reach the caller, and the
    engine records the whole reply."""
    events: list[StreamEvent] = []
    stream_turn(dapr_kit, events.append, "alice", "Hello, stream over gRPC")
    *tokens, done = events
    assert done.kind == "done" and tokens and {e.kind for e in tokens} == {"token"}
    assert "".join(e.data["text"] for e in tokens) == done.data["reply"]
    state = dapr_kit.runtime.get(done.data["metadata"]["instance_id"])
    assert state is not None and (state.output or {})["reply"] == done.data["reply"]


def test_a_sensitive_turn_waits_then_an_approval_with_an_edit_completes_it(
    dapr_kit: Kit, sidecar: DaprSidecarStub
) -> None:
    result = dapr_kit.submit("bob", "This is urgent")
    assert result.status == "pending_review"
    state = dapr_kit.runtime.get(result.instance_id)
    assert state is not None and (state.runtime_status, state.custom_status) == ("RUNNING", "pending_review")
    assert [r["instance_id"] for r in dapr_kit.reviews.pending()] == [result.instance_id]
    assert [e[1] for e in sidecar.published] == ["human-review"]

    dapr_kit.reviews.decide(
        result.instance_id, approved=True, reply="A human answers: on it.", reviewer="rev"
    )
    done = dapr_kit.wait_turn_sync(result.instance_id, 15)
    assert done is not None and (done.status, done.reply) == ("completed", "A human answers: on it.")
    assert done.review is not None and done.review["reviewer"] == "rev" and done.review["edited"]
    assert dapr_kit.conversations("bob")[0]["reply"] == "A human answers: on it."
    assert eventually(lambda: not dapr_kit.stores.workflows.pending_events())  # raised, then deleted
    with pytest.raises(AlreadyDecided):
        dapr_kit.reviews.decide(result.instance_id, approved=False, reviewer="rev")


def test_a_rejected_turn_stores_nothing(dapr_kit: Kit) -> None:
    result = dapr_kit.submit("carol", "help me")
    dapr_kit.reviews.decide(result.instance_id, approved=False, reason="not for this service", reviewer="rev")
    done = dapr_kit.wait_turn_sync(result.instance_id, 15)
    assert done is not None and (done.status, done.reply) == ("rejected", REJECTED_REPLY)
    assert dapr_kit.conversations("carol") == []
    assert dapr_kit.reviews.get(result.instance_id)["status"] == "rejected"


def test_a_turn_nobody_reviews_times_out_on_the_engines_timer(dapr_settings: Callable[..., Settings]) -> None:
    with bootstrap(dapr_settings(review_timeout="1s")) as kit:
        started = time.monotonic()
        result = kit.submit("dave", "emergency")
        assert result.status == "pending_review"
        done = kit.wait_turn_sync(result.instance_id, 15)
        assert done is not None and (done.status, done.reply) == ("timed_out", TIMED_OUT_REPLY)
        assert time.monotonic() - started >= 1.0
        assert kit.reviews.get(result.instance_id)["status"] == "timed_out"
        with pytest.raises(AlreadyDecided, match="timed out"):
            kit.reviews.decide(result.instance_id, approved=True, reviewer="late")


def test_a_decision_recorded_before_the_timer_fires_wins_even_if_it_never_reached_the_engine(
    dapr_settings: Callable[..., Settings],
) -> None:
    with bootstrap(dapr_settings(review_timeout="1s")) as kit:
        result = kit.submit("fay", "urgent: the timer will win the race to the engine")
        assert isinstance(kit.runtime, DaprWorkflowRuntime) and kit.runtime.delivery is not None
        kit.runtime.delivery.close()  # the decision's event is never raised (as if daprd were away)
        kit.reviews.decide(result.instance_id, approved=True, reply="Decided in time.", reviewer="rev")
        done = kit.wait_turn_sync(result.instance_id, 15)  # the engine's timer fires after 1 s
        assert done is not None and (done.status, done.reply) == ("completed", "Decided in time.")
        assert kit.reviews.get(result.instance_id)["status"] == "approved"
        kit.runtime.delivery.start()  # the next start raises the late event to the ended turn: ignored
        assert eventually(lambda: not kit.stores.workflows.pending_events())
        assert kit.turn(result.instance_id).status == "completed"  # type: ignore[union-attr]


def test_turns_run_side_by_side(dapr_kit: Kit, sidecar: DaprSidecarStub) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: dapr_kit.submit(f"u{i % 4}", f"message {i}"), range(16)))
    assert {r.status for r in results} == {"completed"}
    deliver_published(dapr_kit, sidecar)
    assert sum(dapr_kit.message_count(f"u{i}") for i in range(4)) == 16


# -- the real app, end to end over HTTP ------------------------------------------------------------
@pytest.mark.slow
def test_the_app_in_dapr_mode_end_to_end(
    tmp_path: Path, engine: DurableTaskEngine, sidecar: DaprSidecarStub
) -> None:
    env: dict[str, str | None] = {
        "DACA_RUNTIME": "dapr",
        "DAPR_HTTP_ENDPOINT": sidecar.url,
        "DAPR_RUNTIME_HOST": "127.0.0.1",
        "DAPR_GRPC_PORT": engine.port,
        "DAPR_GRPC_ENDPOINT": None,
        "DACA_REVIEW_TIMEOUT": "1h",
    }
    with AppProcess(tmp_path, env=env) as app, app.client() as http:
        sidecar.subscriber = app.base_url  # daprd pushes subscribed events to the app
        # The app opens its work-item stream once it listens; until then a turn is a clear 503.
        eventually(lambda: "workflow runtime started" in app.output())
        assert http.get("/health").json()["backends"]["workflow"]["backend"] == "dapr"

        plain = http.post("/chat/", json={"user_id": "erin", "text": "Hello from HTTP"})
        assert plain.status_code == 200, plain.text
        assert plain.json()["metadata"]["status"] == "completed"

        held = http.post("/chat/?wait=0", json={"user_id": "erin", "text": "urgent, please"})
        assert held.status_code == 202, held.text
        instance_id = held.json()["instance_id"]
        assert http.get(f"/chat/{instance_id}").json()["status"] == "pending_review"
        pending = http.get("/reviews", auth=app.reviewer_auth).json()
        assert [r["instance_id"] for r in pending] == [instance_id]

        decided = http.post(
            f"/reviews/{instance_id}",
            json={"approved": True, "reply": "Reviewed reply."},
            auth=app.reviewer_auth,
        )
        assert decided.status_code == 200, decided.text
        turn = eventually(
            lambda: (b := http.get(f"/chat/{instance_id}").json())["status"] == "completed" and b
        )
        assert turn["reply"] == "Reviewed reply."
        again = http.post(f"/reviews/{instance_id}", json={"approved": False}, auth=app.reviewer_auth)
        assert again.status_code == 409

        assert eventually(lambda: http.get("/analytics/erin").json()["message_count"] == 2)
        stored = http.get("/conversations/erin", headers=app.admin_headers).json()
        assert [t["reply"] for t in stored] == ["Reviewed reply.", plain.json()["reply"]]
    assert [d[1:] for d in sidecar.deliveries if d[0] == "messages"] == [(200, {"status": "SUCCESS"})] * 2
    assert "Traceback" not in app.output()
