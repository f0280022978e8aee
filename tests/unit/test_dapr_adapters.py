"""The Dapr adapters against stand-ins for the sidecar: its HTTP API (tests/support/dapr_sidecar_stub.py)
for counters and events, and Dapr's own workflow engine in process (tests/support/replay.py) for the
workflow runtime. No daprd runs here; what only a live sidecar can show is listed in the README.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from daca_kit.adapters.dapr.pubsub import DaprEventBus
from daca_kit.adapters.dapr.sidecar import DAPR_RUN, DaprSidecar, require_sidecar
from daca_kit.adapters.dapr.state import USERS_KEY, DaprCounters
from daca_kit.adapters.dapr.workflow import DaprWorkflowRuntime, instance_state
from daca_kit.adapters.sql import open_stores
from daca_kit.bootstrap import bootstrap
from daca_kit.core.activities import TurnActivities
from daca_kit.core.analytics import CONSUMER, COUNT_KEY, AnalyticsConsumer
from daca_kit.core.kit import Kit
from daca_kit.core.models import COMPLETED, FAILED, RUNNING
from daca_kit.core.workflow import MESSAGES_TOPIC, WORKFLOW_NAME, chat_turn, cloud_event
from daca_kit.errors import BackendError, BusError, ConfigError, CountersError, WorkflowError
from daca_kit.ops.launcher import free_port
from daca_kit.web.api.events import events_router
from tests.support.dapr_sidecar_stub import DaprSidecarStub
from tests.support.fakes import FakeCounters, FakeReplyModel
from tests.support.replay import EngineWorkflowClient, engine_registry


@pytest.fixture
def sidecar() -> Iterator[DaprSidecarStub]:
    with DaprSidecarStub() as stub:
        yield stub


@pytest.fixture
def counters(sidecar: DaprSidecarStub) -> Iterator[DaprCounters]:
    adapter = DaprCounters(DaprSidecar(sidecar.url), "statestore")
    yield adapter
    adapter.close()


@pytest.fixture
def bus(sidecar: DaprSidecarStub) -> Iterator[DaprEventBus]:
    adapter = DaprEventBus(DaprSidecar(sidecar.url), "pubsub")
    yield adapter
    adapter.close()


def run_threads(targets: list[Callable[[], Any]]) -> list[BaseException]:
    errors: list[BaseException] = []

    def guarded(fn: Callable[[], Any]) -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - collected and asserted on
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return errors


# -- counters on the state API -------------------------------------------------------------------
def test_counts_start_at_zero_and_count_each_event_once(
    counters: DaprCounters, sidecar: DaprSidecarStub
) -> None:
    assert counters.get("alice") == 0
    assert counters.increment_once("alice", "turn-1:MessageSent") == 1
    assert counters.increment_once("alice", "turn-1:MessageSent") == 1  # redelivered
    assert counters.increment_once("alice", "turn-2:MessageSent") == 2
    for _ in range(5):
        assert counters.increment_once("alice", "turn-2:MessageSent") == 2
    assert counters.get("alice") == 2
    assert sidecar.value(COUNT_KEY.format("alice")) == {
        "count": 2,
        "recent": ["turn-1:MessageSent", "turn-2:MessageSent"],
    }
    assert sidecar.value(USERS_KEY) == {"users": ["alice"]}
    assert counters.commands > 0


def test_set_keeps_the_counted_events(counters: DaprCounters) -> None:
    counters.increment_once("bob", "e1")
    counters.set("bob", 41)
    assert counters.get("bob") == 41
    assert counters.increment_once("bob", "e1") == 41  # still a redelivery
    assert counters.increment_once("bob", "e2") == 42


def test_concurrent_increments_and_redeliveries_count_exactly_once(
    counters: DaprCounters, sidecar: DaprSidecarStub
) -> None:
    sidecar.read_delay = 0.002  # hold each read so the writers really collide
    distinct = [lambda i=i: counters.increment_once("carol", f"event-{i}") for i in range(24)]
    redelivered = [lambda: counters.increment_once("carol", "event-same") for _ in range(8)]
    assert run_threads(distinct + redelivered) == []
    assert counters.get("carol") == 25
    assert sidecar.conflicts > 0, "the test did not make writers collide"
    assert counters.conflicts == sidecar.conflicts
    assert sidecar.value(USERS_KEY) == {"users": ["carol"]}


def test_concurrent_first_counts_of_new_users_lose_nothing(
    counters: DaprCounters, sidecar: DaprSidecarStub
) -> None:
    sidecar.read_delay = 0.002
    users = [f"user{n}" for n in range(6)]
    work = [lambda u=u, i=i: counters.increment_once(u, f"{u}-{i}") for u in users for i in range(3)]
    assert run_threads(work) == []
    assert counters.all() == {u: 3 for u in users}
    assert sorted(sidecar.value(USERS_KEY)["users"]) == sorted(users)


def test_reset_zeroes_every_counter_idempotently(counters: DaprCounters) -> None:
    counters.increment_once("alice", "a1")
    counters.increment_once("alice", "a2")
    counters.increment_once("bob", "b1")
    counters.set("dave", 0)
    assert counters.reset() == 2
    assert counters.all() == {"alice": 0, "bob": 0, "dave": 0}
    assert counters.reset() == 0
    # An event counted before the reset and delivered again after it still counts once.
    assert counters.increment_once("alice", "a2") == 0
    assert counters.increment_once("alice", "a3") == 1


def test_reset_with_no_counters(counters: DaprCounters) -> None:
    assert counters.reset() == 0
    assert counters.all() == {}


def test_an_unknown_state_store_is_named_with_the_file_and_setting(sidecar: DaprSidecarStub) -> None:
    adapter = DaprCounters(DaprSidecar(sidecar.url), "nostore")
    with pytest.raises(CountersError, match="no state store named 'nostore'") as caught:
        adapter.get("alice")
    assert "components/statestore.yaml" in str(caught.value) and "DACA_DAPR_STATESTORE" in str(caught.value)
    adapter.close()


def test_a_sidecar_that_went_away_is_a_counters_error() -> None:
    stub = DaprSidecarStub()
    adapter = DaprCounters(DaprSidecar(stub.url))
    stub.close()
    with pytest.raises(
        CountersError, match=r"Could not count the message: no Dapr sidecar answered at http://127\.0\.0\.1:"
    ):
        adapter.increment_once("alice", "e1")
    with pytest.raises(CountersError, match="is unreachable"):
        adapter.ping()
    adapter.close()


def test_the_api_token_is_sent_and_a_refusal_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, settings_factory: Any
) -> None:
    with DaprSidecarStub(token="s3cret-token") as stub:
        anonymous = DaprCounters(DaprSidecar(stub.url))
        with pytest.raises(CountersError, match="set DAPR_API_TOKEN"):
            anonymous.get("alice")
        anonymous.close()
        monkeypatch.setenv("DAPR_API_TOKEN", "s3cret-token")
        adapter = DaprCounters.from_settings(settings_factory(dapr_http_endpoint=stub.url), wait=0)
        assert adapter.increment_once("alice", "e1") == 1
        adapter.close()


def test_ping_uses_the_outbound_health_endpoint(counters: DaprCounters, sidecar: DaprSidecarStub) -> None:
    counters.ping()
    assert ("GET", "/v1.0/healthz/outbound") in sidecar.requests
    sidecar.healthy = False
    with pytest.raises(CountersError, match="status 500"):
        counters.ping()


# -- events on the pub/sub API --------------------------------------------------------------------
def message_sent(event_id: str = "turn-1:MessageSent", user_id: str = "alice") -> dict[str, Any]:
    data = {
        "instance_id": "turn-1",
        "user_id": user_id,
        "message": "hi",
        "reply": "hello",
        "timestamp": "2026-01-01T12:00:00.000Z",
    }
    return cloud_event("MessageSent", event_id, MESSAGES_TOPIC, data)


def test_publish_sends_the_cloudevent_as_is(bus: DaprEventBus, sidecar: DaprSidecarStub) -> None:
    event = message_sent()
    bus.publish(MESSAGES_TOPIC, event)
    review = cloud_event(
        "HumanReviewRequired", "turn-1:HumanReviewRequired", "human-review", {"user_id": "alice"}
    )
    bus.publish("human-review", review)
    assert bus.published == 2
    (pubsub, topic, content_type, body), (_, topic2, _, body2) = sidecar.published
    assert (pubsub, topic, content_type) == ("pubsub", "messages", "application/cloudevents+json")
    assert body == event
    assert (
        body["specversion"] == "1.0" and body["id"] == "turn-1:MessageSent" and body["type"] == "MessageSent"
    )
    assert topic2 == "human-review"
    assert "time" not in body2  # no timestamp in the data: the attribute is left out, not null


def test_publish_errors_are_sentences(bus: DaprEventBus, sidecar: DaprSidecarStub) -> None:
    missing = DaprEventBus(DaprSidecar(sidecar.url), "nopubsub")
    with pytest.raises(BusError, match="no pub/sub named 'nopubsub'") as caught:
        missing.publish(MESSAGES_TOPIC, message_sent())
    assert "components/pubsub.yaml" in str(caught.value) and "DACA_DAPR_PUBSUB" in str(caught.value)
    missing.close()
    sidecar.publish_error = (403, "ERR_PUBSUB_FORBIDDEN", "topic messages is not allowed for app id daca-kit")
    with pytest.raises(BusError, match="scopes"):
        bus.publish(MESSAGES_TOPIC, message_sent())
    sidecar.publish_error = (
        500,
        "ERR_PUBSUB_PUBLISH_MESSAGE",
        "error when publish to topic messages: connection refused",
    )
    with pytest.raises(BusError, match="ERR_PUBSUB_PUBLISH_MESSAGE.*AMQP_URL"):
        bus.publish(MESSAGES_TOPIC, message_sent())
    assert bus.published == 0


def router_app(bus: Any) -> FastAPI:
    app = FastAPI()
    app.include_router(events_router(bus))
    return app


def test_delivered_events_are_counted_once_however_often_dapr_delivers_them(
    bus: DaprEventBus, counters: DaprCounters, sidecar: DaprSidecarStub
) -> None:
    bus.subscribe(MESSAGES_TOPIC, AnalyticsConsumer(counters), consumer=CONSUMER)
    bus.publish(MESSAGES_TOPIC, message_sent())
    delivered = sidecar.published[0][3]  # what daprd would push back to the app
    with TestClient(router_app(bus), client=("127.0.0.1", 40000)) as http:
        for _ in range(3):
            response = http.post(
                "/events/messages", json=delivered, headers={"content-type": "application/cloudevents+json"}
            )
            assert response.status_code == 200
            assert response.json() == {"status": "SUCCESS"}
    assert counters.get("alice") == 1


def test_delivery_statuses_follow_dapr_contract(sidecar: DaprSidecarStub) -> None:
    bus = DaprEventBus(DaprSidecar(sidecar.url))
    with TestClient(router_app(bus), client=("127.0.0.1", 40000)) as http:
        no_handler_yet = http.post("/events/messages", json=message_sent())
        assert no_handler_yet.json() == {"status": "RETRY"}
        seen: list[dict[str, Any]] = []
        bus.subscribe(MESSAGES_TOPIC, seen.append, consumer="test")
        assert http.post("/events/messages", json=message_sent()).json() == {"status": "SUCCESS"}
        assert seen[0]["id"] == "turn-1:MessageSent"

        def broken(event: dict[str, Any]) -> None:
            raise CountersError("Redis is down")

        bus.subscribe(MESSAGES_TOPIC, broken, consumer="broken")
        assert http.post("/events/messages", json=message_sent()).json() == {"status": "RETRY"}
        assert http.post("/events/messages", content=b"not json").json() == {"status": "DROP"}
        assert http.post("/events/messages", json=["not", "an", "event"]).json() == {"status": "DROP"}
    bus.close()


def test_only_the_sidecar_may_deliver(monkeypatch: pytest.MonkeyPatch, sidecar: DaprSidecarStub) -> None:
    bus = DaprEventBus(DaprSidecar(sidecar.url))
    bus.subscribe(MESSAGES_TOPIC, lambda event: None, consumer="test")
    app = router_app(bus)
    with TestClient(app, client=("203.0.113.9", 40000)) as http:
        assert http.post("/events/messages", json=message_sent()).status_code == 403
    with TestClient(app, client=("127.0.0.1", 40000)) as http:
        # Through the Space's proxy a public request is forwarded: refused even though it comes from loopback.
        response = http.post(
            "/events/messages", json=message_sent(), headers={"x-forwarded-for": "198.51.100.7"}
        )
        assert response.status_code == 403
    monkeypatch.setenv("APP_API_TOKEN", "app-token")
    with TestClient(app, client=("203.0.113.9", 40000)) as http:
        assert http.post("/events/messages", json=message_sent()).status_code == 403
        ok = http.post("/events/messages", json=message_sent(), headers={"dapr-api-token": "app-token"})
        assert ok.json() == {"status": "SUCCESS"}
    bus.close()


# -- start-up: fail fast without a sidecar ------------------------------------------------------------
def test_no_sidecar_fails_fast_with_what_to_start(settings_factory: Any) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    settings = settings_factory(runtime="dapr", dapr_http_endpoint=url)
    inbox = open_stores(settings.database_url).workflows
    for build in (
        lambda: DaprCounters.from_settings(settings, wait=0),
        lambda: DaprEventBus.from_settings(settings, wait=0),
        lambda: DaprWorkflowRuntime.from_settings(
            settings, workflows={WORKFLOW_NAME: chat_turn}, activities={}, inbox=inbox, wait=0
        ),
    ):
        with pytest.raises(ConfigError) as caught:
            build()
        assert str(caught.value) == (
            f"No Dapr sidecar answered at {url} (DAPR_HTTP_ENDPOINT): start the app with `{DAPR_RUN}`, "
            "or set DACA_RUNTIME=local"
        )


def test_bootstrap_in_dapr_mode_fails_fast_naming_the_port(
    monkeypatch: pytest.MonkeyPatch, settings_factory: Any
) -> None:
    port = free_port()
    monkeypatch.delenv("DAPR_HTTP_ENDPOINT", raising=False)
    monkeypatch.setenv("DAPR_HTTP_PORT", str(port))
    monkeypatch.setenv("DAPR_HEALTH_TIMEOUT", "0")
    with pytest.raises(
        ConfigError, match=rf"No Dapr sidecar answered at http://127\.0\.0\.1:{port} \(DAPR_HTTP_PORT\)"
    ):
        bootstrap(settings_factory(runtime="dapr", dapr_http_endpoint=None))


def test_a_sidecar_whose_components_failed_is_reported(sidecar: DaprSidecarStub) -> None:
    sidecar.healthy = False
    client = DaprSidecar(sidecar.url)
    with pytest.raises(ConfigError, match="not ready .*status 500.*daprd log"):
        require_sidecar(client, wait=0)
    client.close()


def test_bootstrap_in_dapr_mode_wires_the_dapr_adapters(
    monkeypatch: pytest.MonkeyPatch, settings_factory: Any, sidecar: DaprSidecarStub
) -> None:
    monkeypatch.setenv("DAPR_HEALTH_TIMEOUT", "0")
    kit = bootstrap(settings_factory(runtime="dapr", dapr_http_endpoint=sidecar.url))
    try:
        assert isinstance(kit.counters, DaprCounters) and isinstance(kit.bus, DaprEventBus)
        assert isinstance(kit.runtime, DaprWorkflowRuntime)
        assert kit.backends["counters"].label == "dapr-state:statestore"
        assert kit.backends["events"].label == "dapr-pubsub:pubsub"
        assert kit.backends["workflow"].label == "dapr"
        assert kit.runtime.delivery is not None and kit.runtime.delivery.inbox is kit.stores.workflows
    finally:
        kit.runtime.close()
        kit.counters.close()  # type: ignore[attr-defined]
        kit.bus.close()
        kit.stores.database.close()


def test_start_fails_with_a_sentence_when_the_workflow_api_does_not_answer(sidecar: DaprSidecarStub) -> None:
    runtime = DaprWorkflowRuntime(
        {WORKFLOW_NAME: chat_turn},
        {},
        sidecar=DaprSidecar(sidecar.url),
        grpc_host="127.0.0.1",
        grpc_port=str(free_port()),
        start_timeout=0.5,
    )
    with pytest.raises(
        BackendError, match=r"\(DAPR_GRPC_PORT\) did not open a work-item stream within 0\.5 s: check"
    ) as caught:
        runtime.start()
    assert caught.value.backend == "workflow"
    runtime.close()


# -- the workflow runtime -------------------------------------------------------------------------------
def registered_function(runtime: DaprWorkflowRuntime, name: str) -> Any:
    """The user function inside the SDK's wrapper registered under `name`."""
    wrapper = engine_registry(runtime).orchestrators[name]
    inner = [c.cell_contents for c in wrapper.__closure__ or () if callable(c.cell_contents)]
    return next(fn for fn in inner if getattr(fn, "__name__", "") != "orchestrationWrapper")


def test_the_registered_workflow_is_chat_turn_itself(tmp_path: Any) -> None:
    store = open_stores(f"sqlite:///{tmp_path / 'daca.db'}")
    activities = TurnActivities(
        conversations=store.conversations,
        reviews=store.reviews,
        counters=FakeCounters(),
        model=FakeReplyModel(),
    ).as_dict()
    first = DaprWorkflowRuntime({WORKFLOW_NAME: chat_turn}, activities)
    second = DaprWorkflowRuntime({WORKFLOW_NAME: chat_turn}, activities)  # a second one in the same process
    for runtime in (first, second):
        assert registered_function(runtime, WORKFLOW_NAME) is chat_turn
        assert sorted(engine_registry(runtime).activities) == sorted(activities)
        assert runtime.name == "dapr"
    with pytest.raises(WorkflowError, match="already registered with Dapr as 'chat_turn'"):
        DaprWorkflowRuntime({"another_name": chat_turn}, {})
    first.close()
    second.close()
    store.database.close()


def workflow_state(
    status: str, *, output: Any = None, custom: str | None = None, failure: tuple[str, str] | None = None
) -> Any:
    import json

    from dapr.ext.workflow import WorkflowState
    from dapr.ext.workflow._durabletask import client
    from dapr.ext.workflow._durabletask.task import FailureDetails

    return WorkflowState(
        client.WorkflowState(
            "turn-1",
            WORKFLOW_NAME,
            client.OrchestrationStatus[status],
            datetime(2026, 1, 1, 12, 0, 0),
            datetime(2026, 1, 1, 12, 0, 5),
            json.dumps({"user_id": "alice", "text": "hi"}),
            json.dumps(output) if output is not None else None,
            custom,
            FailureDetails(failure[1], failure[0], None) if failure else None,
        )
    )


def test_workflow_states_map_to_instance_states() -> None:
    done = instance_state(
        workflow_state("COMPLETED", output={"status": "completed", "reply": "hello"}, custom="completed")
    )
    assert (done.runtime_status, done.custom_status, done.output) == (
        COMPLETED,
        "completed",
        {"status": "completed", "reply": "hello"},
    )
    assert done.input == {"user_id": "alice", "text": "hi"}
    assert done.created_at.tzinfo is not None and done.created_at.hour == 12
    waiting = instance_state(workflow_state("RUNNING", custom="pending_review"))
    assert (waiting.runtime_status, waiting.custom_status, waiting.output) == (
        RUNNING,
        "pending_review",
        None,
    )
    assert (
        instance_state(workflow_state("RUNNING", custom='"pending_review"')).custom_status == "pending_review"
    )
    assert instance_state(workflow_state("PENDING")).runtime_status == RUNNING
    failed = instance_state(
        workflow_state("FAILED", failure=("TaskFailedError", "Activity task #7 failed: db down"))
    )
    assert failed.runtime_status == FAILED
    assert failed.output == {
        "status": "failed",
        "reply": None,
        "error": "The turn failed on Dapr Workflow: Activity task #7 failed: db down",
    }
    terminated = instance_state(workflow_state("TERMINATED"))
    assert terminated.runtime_status == FAILED and terminated.output["status"] == "failed"


def test_a_plain_turn_completes_within_schedule(engine_kit: tuple[Kit, EngineWorkflowClient]) -> None:
    kit, _client = engine_kit
    result = kit.submit("alice", "Hello there")
    assert result.status == "completed"
    assert result.reply
    assert kit.conversations("alice")[0]["message"] == "Hello there"
    assert kit.turn(result.instance_id).status == "completed"  # type: ignore[union-attr]
    assert kit.turns_completed == 1
    assert kit.runtime.get("no-such-turn") is None


def test_a_sensitive_turn_waits_for_free_then_resumes_on_the_decision(
    engine_kit: tuple[Kit, EngineWorkflowClient],
) -> None:
    kit, client = engine_kit
    result = kit.submit("bob", "This is urgent")
    assert result.status == "pending_review"
    assert [r["instance_id"] for r in kit.reviews.pending()] == [result.instance_id]
    calls_while_waiting = len(client.calls)
    client.idle()
    assert len(client.calls) == calls_while_waiting  # nobody polls a turn that waits for a reviewer

    kit.reviews.decide(result.instance_id, approved=True, reply="An edited reply.", reviewer="reviewer")
    done = kit.wait_turn_sync(result.instance_id, 5)
    assert done is not None and done.status == "completed"
    assert done.reply == "An edited reply."
    assert ("raise_workflow_event", result.instance_id) in client.calls
    assert kit.conversations("bob")[0]["reply"] == "An edited reply."
    client.idle()
    assert kit.turns_completed == 1  # observed by schedule, wait and the watcher: counted once


def test_a_rejected_turn(engine_kit: tuple[Kit, EngineWorkflowClient]) -> None:
    kit, _client = engine_kit
    result = kit.submit("carol", "help me")
    kit.reviews.decide(result.instance_id, approved=False, reason="no", reviewer="reviewer")
    done = kit.wait_turn_sync(result.instance_id, 5)
    assert done is not None and done.status == "rejected"
    assert kit.conversations("carol") == []


def test_a_turn_nobody_reviews_times_out(engine_kit: tuple[Kit, EngineWorkflowClient]) -> None:
    kit, client = engine_kit
    result = kit.submit("dave", "emergency")
    client.fire_timers(result.instance_id)
    done = kit.wait_turn_sync(result.instance_id, 5)
    assert done is not None and done.status == "timed_out"
    assert kit.reviews.get(result.instance_id)["status"] == "timed_out"


def test_wait_async_returns_the_finished_turn(engine_kit: tuple[Kit, EngineWorkflowClient]) -> None:
    import asyncio

    kit, _client = engine_kit
    result = kit.submit("erin", "urgent question")
    kit.reviews.decide(result.instance_id, approved=True, reviewer="reviewer")
    done = asyncio.run(kit.wait_turn(result.instance_id, 5))
    assert done is not None and done.status == "completed"
    pending = kit.submit("erin", "urgent again")
    still = asyncio.run(kit.wait_turn(pending.instance_id, 0.2))
    assert still is not None and still.status == "pending_review"


def test_the_runtime_must_be_started_first() -> None:
    runtime = DaprWorkflowRuntime({WORKFLOW_NAME: chat_turn}, {})
    with pytest.raises(BackendError, match=r"Dapr Workflow is not connected: .* Try again in a few seconds"):
        runtime.get("turn-1")
    with pytest.raises(WorkflowError, match="No workflow named 'other'"):
        runtime.schedule("other", "turn-1", {})
    runtime.close()


def test_a_batch_counts_each_new_event_once_per_user(counters: DaprCounters) -> None:
    counters.increment_once("alice", "a1")
    batch = [("alice", "a1"), ("alice", "a2"), ("bob", "b1"), ("alice", "a2"), ("bob", "b2")]
    assert counters.increment_many(batch) == 3  # a1 was counted before; a2 twice in the batch is once
    assert (counters.get("alice"), counters.get("bob")) == (2, 2)
    assert counters.increment_many(batch) == 0  # the whole batch redelivered
    assert (counters.get("alice"), counters.get("bob")) == (2, 2)
