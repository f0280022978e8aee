"""The review races of tests/unit/test_review_races.py on Postgres (read committed, real concurrency)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from daca_kit.core.kit import Kit
from tests.unit.test_review_races import (
    AGREES,
    fresh_kit,
    race_reviewers_with_submit,
    race_reviewers_with_the_timer,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def pg_kit(settings_factory: Any, pg_url: str) -> Iterator[Callable[[str], Kit]]:
    """Starts a kit on a fresh Postgres database with the given review timeout."""
    kits: list[Kit] = []

    def make(review_timeout: str) -> Kit:
        kits.append(fresh_kit(settings_factory(database_url=pg_url, review_timeout=review_timeout)))
        return kits[-1]

    yield make
    for kit in kits:
        kit.close()


def test_decisions_racing_submit_always_resume_their_turn_on_postgres(pg_kit: Callable[[str], Kit]) -> None:
    statuses = race_reviewers_with_submit(pg_kit("1h"), 200)
    assert statuses == ["completed" if i % 2 == 0 else "rejected" for i in range(200)]


def test_decisions_racing_the_timer_agree_with_the_outcome_on_postgres(pg_kit: Callable[[str], Kit]) -> None:
    outcomes = race_reviewers_with_the_timer(pg_kit("40ms"), 40)
    assert [o for o in outcomes if AGREES.get(o[0] or "") != o[1]] == []
    assert {o[0] for o in outcomes} >= {"timed_out"}
