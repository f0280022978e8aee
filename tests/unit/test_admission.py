"""Per-visitor admission: the visitor's rate, its places among the pending reviews (freed when the turn
ends, or after the review timeout at the latest), and the cap on all pending reviews."""

from __future__ import annotations

import pytest

from daca_kit.core.admission import Admission
from daca_kit.core.models import TurnResult
from daca_kit.core.ratelimit import LocalRateLimiter
from daca_kit.errors import RateLimited


def pending(instance_id: str) -> TurnResult:
    return TurnResult(instance_id=instance_id, user_id="u", status="pending_review")


def test_places_are_held_while_turns_wait_and_freed_when_they_end() -> None:
    now = [0.0]
    admission = Admission(
        LocalRateLimiter(100, 60),
        per_client=2,
        total=100,
        count_pending=lambda: 0,
        max_wait=600,
        clock=lambda: now[0],
    )
    admission.run("a", True, lambda: pending("t1"))
    admission.run("a", True, lambda: pending("t2"))
    with pytest.raises(RateLimited, match="already have 2 messages waiting"):
        admission.run("a", True, lambda: pending("t3"))
    admission.run("b", True, lambda: pending("t4"))  # another visitor is not affected
    admission.run("a", False, lambda: pending("t5"))  # nor is a message that needs no review
    admission.release("t1")
    admission.run("a", True, lambda: pending("t6"))
    now[0] = 601.0  # past the review timeout: the turns have ended by now
    admission.run("a", True, lambda: pending("t7"))


def test_a_failed_start_frees_its_place_and_the_total_cap_holds() -> None:
    waiting = [0]
    admission = Admission(LocalRateLimiter(100, 60), per_client=1, total=3, count_pending=lambda: waiting[0])

    def fail() -> TurnResult:
        raise RuntimeError("model down")

    with pytest.raises(RuntimeError):
        admission.run("a", True, fail)
    admission.run("a", True, lambda: pending("t1"))
    waiting[0] = 3
    with pytest.raises(RateLimited, match="too many messages waiting"):
        admission.run("b", True, lambda: pending("t2"))
    assert admission.run("b", False, lambda: pending("t3")).instance_id == "t3"


def test_the_visitor_rate_counts_every_message() -> None:
    admission = Admission(LocalRateLimiter(3, 60), per_client=5, total=100, count_pending=lambda: 0)
    for i in range(3):
        admission.run("a", False, lambda i=i: pending(f"t{i}"))
    with pytest.raises(RateLimited, match="from your address") as refused:
        admission.run("a", False, lambda: pending("t9"))
    assert refused.value.retry_after >= 1
