"""Who may send one more message, beside the per-user rate limit: a limit per visitor (client address),
whatever user ids it sends, and caps on the messages waiting for a reviewer, from one visitor and in all.

    admission = Admission(LocalRateLimiter(60, 60), per_client=5, total=200, count_pending=store.pending_count)
    result = admission.run("203.0.113.9", sensitive, start_turn)   # RateLimited when over a limit or a cap
    admission.release(instance_id)                                 # the turn ended: its place is free

The app passes no client for the operator on this machine (the admin rule), who is not limited. Counts are
kept in this process (the pending cap also reads the database's count of all pending reviews); a place is
freed when this process sees the turn end, or after `max_wait` seconds (the review timeout) at the latest.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from daca_kit.core.models import TurnResult
from daca_kit.core.ratelimit import RateLimiter
from daca_kit.errors import RateLimited

RETRY_PENDING = 60  # seconds a visitor is told to wait while the reviewers catch up
T = TypeVar("T", bound=TurnResult)


@dataclass(frozen=True)
class Ticket:
    """A place held for one message from `client` while its turn starts (None: not a sensitive message)."""

    client: str
    key: str | None


class Admission:
    """The per-visitor limit and the pending-review caps; see the module docstring."""

    def __init__(
        self,
        limiter: RateLimiter,
        *,
        per_client: int,
        total: int,
        count_pending: Callable[[], int],
        max_wait: float = 24 * 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limiter = limiter
        self.per_client, self.total = per_client, total
        self.count_pending = count_pending
        self.max_wait, self.clock = max_wait, clock
        self._pending: dict[str, dict[str, float]] = {}  # client -> {instance id or reservation: since}
        self._owner: dict[str, str] = {}  # instance id -> client
        self._lock = threading.Lock()
        self._serial = 0

    def run(self, client: str, sensitive: bool, start: Callable[[], T]) -> T:
        """Admits one message from `client` (RateLimited if not), starts its turn with `start()`, and keeps
        its place among the pending while the turn waits for a reviewer."""
        ticket = self.admit(client, sensitive=sensitive)
        result: T | None = None
        try:
            result = start()
        finally:
            self.settle(ticket, None if result is None or result.finished else result.instance_id)
        return result

    def admit(self, client: str, *, sensitive: bool) -> Ticket:
        """Counts one message from `client`; for a sensitive one, also holds a place among the pending."""
        allowed, retry_after = self.limiter.hit(f"client:{client}")
        if not allowed:
            wait = max(1, round(retry_after))
            raise RateLimited(
                f"Too many messages from your address: try again in {wait} s. Other visitors are not affected.",
                retry_after=wait,
            )
        if not sensitive:
            return Ticket(client, None)
        with self._lock:
            mine = self._live(client)
            if len(mine) >= self.per_client:
                raise RateLimited(
                    f"You already have {len(mine)} messages waiting for a human reviewer: send another sensitive "
                    "message once one of them is answered.",
                    retry_after=RETRY_PENDING,
                )
            self._serial += 1
            key = f"reserved-{self._serial}"
            mine[key] = self.clock()
        if self.count_pending() >= self.total:
            self.settle(Ticket(client, key), None)
            raise RateLimited(
                "The reviewers have too many messages waiting right now: try again in a few minutes.",
                retry_after=RETRY_PENDING,
            )
        return Ticket(client, key)

    def settle(self, ticket: Ticket, instance_id: str | None) -> None:
        """The turn of `ticket` started: it waits for a reviewer as `instance_id`, or (None) it does not."""
        if ticket.key is None:
            return
        with self._lock:
            mine = self._pending.get(ticket.client, {})
            since = mine.pop(ticket.key, None)
            if instance_id is not None and since is not None:
                mine[instance_id] = since
                self._owner[instance_id] = ticket.client
            if not mine:
                self._pending.pop(ticket.client, None)

    def release(self, instance_id: str) -> None:
        with self._lock:
            client = self._owner.pop(instance_id, None)
            if client is not None:
                mine = self._pending.get(client, {})
                mine.pop(instance_id, None)
                if not mine:
                    self._pending.pop(client, None)

    def _live(self, client: str) -> dict[str, float]:
        """`client`'s places, without those older than `max_wait` (their turns have ended by now)."""
        mine = self._pending.setdefault(client, {})
        cutoff = self.clock() - self.max_wait
        for key in [k for k, since in mine.items() if since < cutoff]:
            del mine[key]
            self._owner.pop(key, None)
        return mine
