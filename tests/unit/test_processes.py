"""Several processes on one database, in one test process: leases on instances, the wake-up channel per app
database, waiters that re-check when wake-ups are down, and the UI relay's handling of the visitor."""

from __future__ import annotations

import threading
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from daca_kit.adapters.inprocess import InProcessWakeUps
from daca_kit.adapters.local_runtime import LocalRuntime
from daca_kit.bootstrap import bootstrap, wake_channel
from daca_kit.core.clock import utcnow
from daca_kit.core.kit import Kit
from daca_kit.core.workflow import EXPOSING_ACTIVITIES, WORKFLOW_NAME, chat_turn
from daca_kit.web.relay import PEER_HEADER, RELAY_HEADER, RelayedClient
from tests.support.fakes import FakeCounters, FakeEventBus, FakeReplyModel


def _kit(settings: Any, *, alone: bool) -> Kit:
    kit = bootstrap(settings, counters=FakeCounters(), bus=FakeEventBus(), llm=FakeReplyModel())
    kit.runtime.peers.wakeups = InProcessWakeUps(alone=alone)  # type: ignore[attr-defined]
    return kit.start()


def test_a_lease_is_held_by_one_owner_until_released_or_expired(settings_factory: Any) -> None:
    kit = _kit(settings_factory(), alone=True)
    try:
        store = kit.stores.workflows
        assert store.claim("turn-1", "a", 60)
        assert not store.claim("turn-1", "b", 60)  # a holds it
        assert store.claim("turn-1", "a", 60)  # its owner may renew it
        store.release("turn-1", "b")  # not b's to release
        assert not store.claim("turn-1", "b", 60)
        store.release("turn-1", "a")
        assert store.claim("turn-1", "b", 0.01)
        time.sleep(0.05)
        assert store.claim("turn-1", "a", 60)  # b's lease expired (a killed process)
    finally:
        kit.close()


def test_a_waiter_without_wake_ups_rereads_and_sees_a_decision_taken_in_another_process(
    settings_factory: Any,
) -> None:
    """Two runtimes on one database file and no wake-up backend: the waiter re-checks every second."""
    settings = settings_factory()
    here = _kit(settings, alone=False)
    there = LocalRuntime(
        here.stores.workflows,
        workflows={WORKFLOW_NAME: chat_turn},
        activities=here.activities.as_dict(),
        checkpoint_before=EXPOSING_ACTIVITIES,
        wakeups=InProcessWakeUps(alone=False),
    )
    there.start()
    try:
        pending = here.submit("ann", "urgent: please")
        assert pending.status == "pending_review"
        waited: list[Any] = []
        waiter = threading.Thread(target=lambda: waited.append(here.wait_turn_sync(pending.instance_id, 20)))
        waiter.start()
        time.sleep(0.2)
        here.stores.reviews.decide_review(
            pending.instance_id,
            approved=True,
            reply=None,
            reason=None,
            reviewer="elsewhere",
            decided_at=utcnow(),
            workflow_event=("review_decision", {"approved": True, "reviewer": "elsewhere"}),
        )
        decided_at = time.monotonic()
        there.notify(pending.instance_id)  # the other process resumes it; nobody tells this one
        waiter.join(10)
        assert waited and waited[0].status == "completed"
        assert time.monotonic() - decided_at < 3.0  # about a second, not the 20 s wait
    finally:
        there.close()
        here.close()


def test_each_app_database_has_its_own_wake_up_channel() -> None:
    a = wake_channel("postgresql://u:secret@db:5432/app_a")
    assert a == wake_channel("postgresql://u:other-password@db:5432/app_a")  # the password is not part of it
    assert a != wake_channel("postgresql://u:secret@db:5432/app_b")
    assert "secret" not in a and a.startswith("daca:wake:")


def _echo_client(request: Request) -> JSONResponse:
    return JSONResponse(
        {"client": request.client.host if request.client else None, "headers": dict(request.headers)}
    )


def test_the_ui_worker_takes_the_visitor_from_a_relay_with_the_token_and_refuses_other_relays() -> None:
    app = RelayedClient(Starlette(routes=[Route("/", _echo_client)]), token="right-token")
    with TestClient(app) as client:
        relayed = client.get(
            "/", headers={RELAY_HEADER.decode(): "right-token", PEER_HEADER.decode(): "203.0.113.9:4711"}
        )
        assert relayed.status_code == 200
        assert relayed.json()["client"] == "203.0.113.9"
        assert RELAY_HEADER.decode() not in relayed.json()["headers"]
        forged = client.get(
            "/", headers={RELAY_HEADER.decode(): "guess", PEER_HEADER.decode(): "127.0.0.1:1"}
        )
        assert forged.status_code == 403
        plain = client.get("/")
        assert plain.status_code == 200 and plain.json()["client"] == "testclient"
