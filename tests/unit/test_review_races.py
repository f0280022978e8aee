"""A review decision and the turn's outcome always agree, however the decision is timed.

- A decision that arrives the moment the review is visible (before the turn has saved that it waits)
  resumes the turn; so does one made after a crash at any point of a sensitive turn, once restarted.
- A decision racing the review timer: one wins, and the review's status and the turn's outcome agree;
  the loser gets AlreadyDecided (HTTP 409).
- On Dapr Workflow the decision reaches the engine through the workflow inbox: a stopped sidecar, a
  crash before the event was raised, or a timer firing first never separate the two.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from daca_kit.adapters.dapr.workflow import DaprWorkflowRuntime
from daca_kit.adapters.local_runtime import LocalRuntime
from daca_kit.bootstrap import bootstrap
from daca_kit.core.clock import utcnow
from daca_kit.core.kit import Kit
from daca_kit.core.workflow import EXPOSING_ACTIVITIES, REVIEW_EVENT, WORKFLOW_NAME, chat_turn
from daca_kit.errors import AlreadyDecided
from tests.support.fakes import FakeCounters, FakeEventBus, FakeReplyModel
from tests.support.replay import EngineWorkflowClient

# The review's status for each way a turn can end.
AGREES = {"completed": "approved", "rejected": "rejected", "timed_out": "timed_out"}


def fresh_kit(settings: Any) -> Kit:
    return bootstrap(settings, counters=FakeCounters(), bus=FakeEventBus(), llm=FakeReplyModel()).start()


@pytest.fixture
def kit(settings_factory: Any) -> Iterator[Kit]:
    kit = fresh_kit(settings_factory(review_timeout="1h"))
    yield kit
    kit.close()


def in_another_thread(fn: Callable[[], Any]) -> Any:
    """Runs `fn` on another thread (a reviewer's request) and returns its result or raises its error."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(("ok", fn()))
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller
            outcome.append(("error", exc))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    kind, value = outcome[0]
    if kind == "error":
        raise value
    return value


def wrap_activity(kit: Kit, name: str, around: Callable[[Callable[..., Any], Any, Any], Any]) -> None:
    """Replaces one of the local runtime's activities by `around(original, ctx, data)`."""
    activities = kit.runtime.activities  # type: ignore[attr-defined]
    original = activities[name]
    activities[name] = lambda ctx, data: around(original, ctx, data)


def finished(kit: Kit, instance_id: str, timeout: float = 5.0) -> str | None:
    result = kit.wait_turn_sync(instance_id, timeout)
    return result.status if result is not None else None


# -- issue 11.1: a decision that arrives too early ---------------------------------------------------
def test_a_decision_made_the_moment_the_review_is_visible_resumes_the_turn(kit: Kit) -> None:
    def request_then_decide(original: Callable[..., Any], ctx: Any, data: Any) -> Any:
        created = original(ctx, data)
        # The reviewer decides as soon as the review is committed, before the turn saved that it waits.
        in_another_thread(lambda: kit.reviews.decide(data["instance_id"], approved=True, reviewer="quick"))
        return created

    wrap_activity(kit, "request_review", request_then_decide)
    pending = kit.submit("bob", "This is urgent")
    assert finished(kit, pending.instance_id, 3) == "completed"
    assert kit.reviews.get(pending.instance_id)["status"] == "approved"
    assert [c["message"] for c in kit.conversations("bob")] == ["This is urgent"]


def test_a_decision_taken_by_another_process_during_the_first_step_resumes_the_turn_there_once(
    kit: Kit,
) -> None:
    """Another worker on the same database takes the decision while this one is still in the first step: the
    turn is leased to this one until its wait is saved, then the other resumes it, once."""
    other = LocalRuntime(
        kit.stores.workflows,
        workflows={WORKFLOW_NAME: chat_turn},
        activities=kit.activities.as_dict(),
        checkpoint_before=EXPOSING_ACTIVITIES,
    )
    other.start()
    stored: list[str] = []

    def request_then_decide_elsewhere(original: Callable[..., Any], ctx: Any, data: Any) -> Any:
        created = original(ctx, data)
        instance_id = data["instance_id"]
        kit.stores.reviews.decide_review(
            instance_id,
            approved=True,
            reply=None,
            reason=None,
            reviewer="elsewhere",
            decided_at=utcnow(),
            workflow_event=(REVIEW_EVENT, {"approved": True, "reply": None, "reviewer": "elsewhere"}),
        )
        other.notify(instance_id)  # the other process finds the turn leased to this one
        time.sleep(0.3)
        return created

    def count_stores(original: Callable[..., Any], ctx: Any, data: Any) -> Any:
        stored.append(data["instance_id"])
        return original(ctx, data)

    try:
        wrap_activity(kit, "request_review", request_then_decide_elsewhere)
        wrap_activity(kit, "store_turn", count_stores)
        stores_there = other.activities["store_turn"]
        other.activities["store_turn"] = lambda ctx, data: count_stores(stores_there, ctx, data)
        result = kit.submit("jack", "urgent")
        assert result.status == "pending_review"  # this process saved its wait; the decision is the other's
        ended = other.wait(result.instance_id, 5)
        assert ended is not None and ended.runtime_status == "COMPLETED"
        assert len(kit.conversations("jack")) == 1
        assert stored == [result.instance_id]  # the turn's last step ran once, in the other process
    finally:
        other.close()


def race_reviewers_with_submit(kit: Kit, runs: int) -> list[str | None]:
    """Submits `runs` sensitive turns, each decided from another thread as soon as its review shows.

    Even turns are approved, odd ones rejected; returns each turn's final status.
    """
    errors: list[BaseException] = []
    for i in range(runs):
        instance_id = f"race-{i:04d}"

        def reviewer(instance_id: str = instance_id, approve: bool = i % 2 == 0) -> None:
            deadline = time.monotonic() + 5
            try:
                while kit.stores.reviews.get_review(instance_id) is None:
                    if time.monotonic() > deadline:
                        raise AssertionError(f"review {instance_id} never appeared")
                kit.reviews.decide(instance_id, approved=approve, reviewer="quick")
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                errors.append(exc)

        thread = threading.Thread(target=reviewer)
        thread.start()
        kit.submit(f"user{i % 7}", "urgent: please help", instance_id=instance_id)
        thread.join(10)
    assert errors == []
    return [finished(kit, f"race-{i:04d}") for i in range(runs)]


def test_decisions_racing_submit_always_resume_their_turn(kit: Kit) -> None:
    """A reviewer who decides as soon as the review shows, from another thread, hundreds of times."""
    statuses = race_reviewers_with_submit(kit, 200)
    stuck = [i for i, s in enumerate(statuses) if s not in ("completed", "rejected")]
    assert stuck == [], f"{len(stuck)} of 200 decided turns never resumed"
    assert statuses == ["completed" if i % 2 == 0 else "rejected" for i in range(200)]


class Crash(BaseException):
    """The process dies here (nothing after this line of the turn runs)."""


def crash_after_write(kit: Kit, n: int) -> list[str]:
    """Makes the n-th committed store write of this thread the last thing the process does."""
    me = threading.get_ident()
    done: list[str] = []
    stores = kit.stores
    for store, name in (
        (stores.workflows, "save"),
        (stores.reviews, "create_review"),
        (stores.reviews, "close_review"),
        (stores.conversations, "store_turn"),
    ):
        original = getattr(store, name)

        def write(*args: Any, _original: Callable[..., Any] = original, _name: str = name, **kw: Any) -> Any:
            result = _original(*args, **kw)
            if threading.get_ident() == me:
                done.append(_name)
                if len(done) == n:
                    raise Crash(f"crashed after {_name}")
            return result

        setattr(store, name, write)
    return done


def die(kit: Kit) -> None:
    """Drops a kit the way a killed process would: no orderly shutdown of its workflow state."""
    kit.runtime._stopped.set()  # type: ignore[attr-defined]
    kit.runtime._pool.shutdown(wait=False, cancel_futures=True)  # type: ignore[attr-defined]
    if kit.relay is not None:
        kit.relay.close()
    kit.stores.database.close()


def test_a_crash_between_the_review_and_the_workflow_save_is_repaired_at_restart(
    settings_factory: Any,
) -> None:
    settings = settings_factory(review_timeout="1h")
    first = fresh_kit(settings)

    def request_then_crash(original: Callable[..., Any], ctx: Any, data: Any) -> Any:
        original(ctx, data)
        raise Crash("the process died right after the review was committed")

    wrap_activity(first, "request_review", request_then_crash)
    with pytest.raises(Crash):
        first.submit("carol", "emergency!", instance_id="crash-0001")
    die(first)

    second = fresh_kit(settings)
    try:
        assert [r["instance_id"] for r in second.reviews.pending()] == ["crash-0001"]
        second.reviews.decide("crash-0001", approved=True, reply="We are on it.", reviewer="reviewer")
        assert finished(second, "crash-0001") == "completed"
        assert [c["reply"] for c in second.conversations("carol")] == ["We are on it."]
    finally:
        second.close()


def test_a_crash_after_any_write_of_a_sensitive_turn_leaves_nothing_undecidable(
    settings_factory: Any, tmp_path: Any
) -> None:
    """Whenever a review is visible after a restart, deciding it resumes the turn."""
    n = 0
    while True:
        n += 1
        settings = settings_factory(review_timeout="1h", database_url=f"sqlite:///{tmp_path / f'c{n}.db'}")
        first = fresh_kit(settings)
        writes = crash_after_write(first, n)
        try:
            first.submit("dave", "urgent help", instance_id=f"crash-{n:04d}")
        except Crash:
            crashed = True
        else:
            crashed = False
        die(first)
        second = fresh_kit(settings)
        try:
            review = second.stores.reviews.get_review(f"crash-{n:04d}")
            if review is not None:
                second.reviews.decide(f"crash-{n:04d}", approved=True, reviewer="reviewer")
                assert finished(second, f"crash-{n:04d}") == "completed", f"crash after {writes}"
                assert len(second.conversations("dave")) == 1
            else:  # nothing visible to decide: the turn never got as far as asking
                assert second.turn(f"crash-{n:04d}") is None or crashed
        finally:
            second.close()
        if not crashed:
            break
    assert n >= 3  # the turn's writes up to its wait were each tried as the last one


# -- issue 11.2: the review timer and a decision racing ---------------------------------------------
def test_a_decision_landing_as_the_timer_fires_wins_and_both_agree(settings_factory: Any) -> None:
    kit = fresh_kit(settings_factory(review_timeout="200ms"))
    try:

        def decide_then_close(original: Callable[..., Any], ctx: Any, data: Any) -> Any:
            # The reviewer's decision commits just after the timer fired, before the review is closed.
            in_another_thread(lambda: kit.reviews.decide(data["instance_id"], approved=True, reviewer="late"))
            return original(ctx, data)

        wrap_activity(kit, "close_review", decide_then_close)
        pending = kit.submit("erin", "urgent")
        status = finished(kit, pending.instance_id)
        review = kit.reviews.get(pending.instance_id)
        assert (status, review["status"]) == ("completed", "approved")
        assert review["decided_by"] == "late"
        assert [c["reply"] for c in kit.conversations("erin")] == [review["final_reply"]]
    finally:
        kit.close()


def test_a_decision_after_the_timeout_is_refused_as_too_late(settings_factory: Any) -> None:
    kit = fresh_kit(settings_factory(review_timeout="100ms"))
    try:
        pending = kit.submit("frank", "urgent")
        assert finished(kit, pending.instance_id) == "timed_out"
        with pytest.raises(AlreadyDecided, match="timed out"):
            kit.reviews.decide(pending.instance_id, approved=True, reviewer="late")
        assert kit.reviews.get(pending.instance_id)["status"] == "timed_out"
        assert kit.conversations("frank") == []
    finally:
        kit.close()


def race_reviewers_with_the_timer(kit: Kit, runs: int) -> list[tuple[str | None, str]]:
    """Decides `runs` turns at random moments around their review timeout: (turn status, review status)."""
    rng = random.Random(11)
    ids = []
    for i in range(runs):
        pending = kit.submit(f"u{i % 5}", "help please", instance_id=f"timer-{i:03d}")
        time.sleep(rng.uniform(0.0, 2 * kit.settings.review_timeout.total_seconds()))
        try:
            kit.reviews.decide(pending.instance_id, approved=i % 3 != 0, reviewer="racer")
        except AlreadyDecided:
            pass
        ids.append(pending.instance_id)
    return [(finished(kit, i), kit.reviews.get(i)["status"]) for i in ids]


def test_decisions_racing_the_timer_always_agree_with_the_outcome(settings_factory: Any) -> None:
    kit = fresh_kit(settings_factory(review_timeout="40ms"))
    try:
        outcomes = race_reviewers_with_the_timer(kit, 40)
        assert [o for o in outcomes if AGREES.get(o[0] or "") != o[1]] == []
        assert {o[0] for o in outcomes} >= {"timed_out"}  # both sides won some races
        assert {o[0] for o in outcomes} & {"completed", "rejected"}
    finally:
        kit.close()


# -- issue 10.5: on Dapr, the recorded decision and the workflow's outcome never disagree --------------
def inbox_empty(kit: Kit, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while kit.stores.workflows.pending_events():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_on_dapr_a_decision_made_while_the_sidecar_is_down_resumes_the_turn_when_it_is_back(
    engine_kit: tuple[Kit, EngineWorkflowClient],
) -> None:
    kit, client = engine_kit
    pending = kit.submit("gina", "urgent: call me")
    assert pending.status == "pending_review"
    client.down = True
    decided = kit.reviews.decide(pending.instance_id, approved=True, reply="We will call you.", reviewer="r1")
    assert decided["status"] == "approved"  # recorded, with the event that resumes the turn
    with pytest.raises(AlreadyDecided):
        kit.reviews.decide(pending.instance_id, approved=False, reviewer="r2")  # a retry cannot change it
    time.sleep(0.5)  # the delivery retries against the stopped sidecar meanwhile
    assert [e["instance_id"] for e in kit.stores.workflows.pending_events()] == [pending.instance_id]
    assert kit.runtime.delivery is not None and kit.runtime.delivery.last_error  # type: ignore[attr-defined]

    client.down = False
    done = kit.wait_turn_sync(pending.instance_id, 10)
    assert done is not None and (done.status, done.reply) == ("completed", "We will call you.")
    assert kit.reviews.get(pending.instance_id)["status"] == "approved"
    assert inbox_empty(kit)


def test_on_dapr_decisions_left_in_the_inbox_are_raised_at_start(
    engine_kit: tuple[Kit, EngineWorkflowClient],
) -> None:
    kit, client = engine_kit
    pending = kit.submit("hank", "help")
    assert kit.runtime.delivery is not None  # type: ignore[attr-defined]
    kit.runtime.delivery.close()  # type: ignore[attr-defined]  # the process dies before raising it
    kit.reviews.decide(pending.instance_id, approved=False, reason="not for us", reviewer="r1")
    assert len(kit.stores.workflows.pending_events()) == 1

    restarted = DaprWorkflowRuntime(
        {WORKFLOW_NAME: chat_turn}, {}, inbox=kit.stores.workflows, client=client, settle_timeout=5
    )
    restarted.start()
    try:
        done = restarted.wait(pending.instance_id, 10)
        assert done is not None and done.output is not None and done.output["status"] == "rejected"
        assert inbox_empty(kit)
    finally:
        restarted.close()


def test_on_dapr_a_recorded_decision_wins_over_a_timer_that_fires_before_it_is_raised(
    engine_kit: tuple[Kit, EngineWorkflowClient],
) -> None:
    kit, client = engine_kit
    pending = kit.submit("ivan", "emergency")
    client.down = True
    kit.reviews.decide(pending.instance_id, approved=True, reply="Handled.", reviewer="r1")
    client.fire_timers(pending.instance_id)  # the review timer fires before the decision reached Dapr
    client.idle()
    client.down = False
    done = kit.wait_turn_sync(pending.instance_id, 10)
    assert done is not None and (done.status, done.reply) == ("completed", "Handled.")
    assert kit.reviews.get(pending.instance_id)["status"] == "approved"
    assert [c["reply"] for c in kit.conversations("ivan")] == ["Handled."]
    assert inbox_empty(kit)  # the late event went to an ended turn and was dropped
