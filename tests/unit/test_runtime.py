"""The local durable runtime: survives restarts, resumes on events and timers, refuses non-determinism."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from daca_kit.adapters.local_runtime import LocalRuntime
from daca_kit.adapters.sql import open_stores
from daca_kit.bootstrap import bootstrap
from daca_kit.core.clock import utcnow
from daca_kit.errors import WorkflowError
from tests.support.fakes import FakeCounters, FakeEventBus, FakeReplyModel


def fresh_kit(settings):
    return bootstrap(settings, counters=FakeCounters(), bus=FakeEventBus(), llm=FakeReplyModel()).start()


def test_pending_review_survives_a_restart_and_completes_after_it(settings_factory) -> None:
    settings = settings_factory()
    first = fresh_kit(settings)
    pending = first.submit("bob", "This is an urgent request!")
    assert pending.status == "pending_review"
    # Simulate a crash: no orderly shutdown of the runtime's state, just drop the process's objects.
    first.runtime._pool.shutdown(wait=False)
    first.stores.database.close()

    second = fresh_kit(settings)
    try:
        assert second.turn(pending.instance_id).status == "pending_review"
        [review] = second.reviews.pending()
        second.reviews.decide(review["instance_id"], approved=True)
        done = second.wait_turn_sync(pending.instance_id, 5)
        assert done.status == "completed"
        assert done.reply == review["proposed_reply"]
        assert len(second.conversations("bob")) == 1
    finally:
        second.close()


def test_decision_made_while_down_is_picked_up_at_start(settings_factory) -> None:
    settings = settings_factory()
    first = fresh_kit(settings)
    pending = first.submit("bob", "urgent")
    first.close()
    # Another process (here: the store alone) records the decision and its workflow event.
    stores = open_stores(settings.database_url)
    stores.reviews.decide_review(
        pending.instance_id,
        approved=False,
        reply=None,
        reason="no",
        reviewer="reviewer",
        decided_at=utcnow(),
        workflow_event=("review_decision", {"approved": False}),
    )
    stores.database.close()
    second = fresh_kit(settings)
    try:
        assert second.wait_turn_sync(pending.instance_id, 5).status == "rejected"
    finally:
        second.close()


def test_review_timer_survives_a_restart(settings_factory) -> None:
    settings = settings_factory(review_timeout="1s")
    first = fresh_kit(settings)
    pending = first.submit("zoe", "urgent")
    first.close()
    time.sleep(1.1)
    second = fresh_kit(settings)
    try:
        assert second.wait_turn_sync(pending.instance_id, 5).status == "timed_out"
    finally:
        second.close()


def test_a_waiting_instance_costs_no_database_calls(settings_factory) -> None:
    kit = fresh_kit(settings_factory())
    try:
        for i in range(5):
            kit.submit(f"u{i}", "urgent")
        kit.relay.wait_idle(5)
        before = kit.stores.database.statements
        time.sleep(1.5)
        assert kit.stores.database.statements == before
    finally:
        kit.close()


def test_non_deterministic_workflow_is_detected_on_replay(tmp_path) -> None:
    stores = open_stores(f"sqlite:///{tmp_path / 'wf.db'}")
    stores.database.create_all()
    flips = iter([True, False])

    def flaky(ctx, _input):
        name = "a" if next(flips) else "b"
        yield ctx.call_activity(name, input=None)
        yield ctx.wait_for_external_event("go")
        return "done"

    runtime = LocalRuntime(
        stores.workflows, workflows={"flaky": flaky}, activities={"a": lambda c, i: 1, "b": lambda c, i: 2}
    )
    runtime.start()
    try:
        state = runtime.schedule("flaky", "wf-1", {})
        assert state.runtime_status == "RUNNING"
        stores.workflows.add_event("wf-1", "go", {})
        with pytest.raises(WorkflowError, match="Non-deterministic"):
            runtime._advance("wf-1")
    finally:
        runtime.close()
        stores.database.close()


def test_activity_failure_is_thrown_into_the_workflow(tmp_path) -> None:
    stores = open_stores(f"sqlite:///{tmp_path / 'wf.db'}")
    stores.database.create_all()

    def boom(_ctx, _input):
        raise RuntimeError("backend gone")

    def wf(ctx, _input):
        try:
            yield ctx.call_activity("boom")
        except Exception as exc:  # noqa: BLE001
            return f"caught: {exc}"
        return "not reached"

    runtime = LocalRuntime(stores.workflows, workflows={"wf": wf}, activities={"boom": boom})
    runtime.start()
    try:
        state = runtime.schedule("wf", "wf-2", {})
        assert state.output == "caught: backend gone"
        assert runtime.get("wf-2").runtime_status == "COMPLETED"
    finally:
        runtime.close()
        stores.database.close()


def test_timer_uses_workflow_time_not_wall_clock(tmp_path) -> None:
    stores = open_stores(f"sqlite:///{tmp_path / 'wf.db'}")
    stores.database.create_all()
    seen = []

    def wf(ctx, _input):
        seen.append(ctx.current_utc_datetime)
        yield ctx.create_timer(timedelta(milliseconds=200))
        return "fired"

    runtime = LocalRuntime(stores.workflows, workflows={"wf": wf}, activities={})
    runtime.start()
    try:
        runtime.schedule("wf", "wf-3", {})
        final = runtime.wait("wf-3", 5)
        assert final.output == "fired"
        # Replays saw the same start time every time.
        assert len(set(seen)) == 1 and len(seen) >= 2
    finally:
        runtime.close()
        stores.database.close()
