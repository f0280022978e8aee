"""Failed reviewer sign-ins, throttled per account and client, for REST and the Review tab alike.

    throttle = LoginThrottle()
    wait = throttle.wait("alice", "203.0.113.9")     # 0.0: may try; else seconds to wait (Retry-After)
    throttle.failed("alice", "203.0.113.9")          # after a wrong password

Every key includes the client's address, so one client's failures never lock out another: a client may
fail `per_account` times for one name and `per_client` times over all names within the window, then
waits until its oldest failure leaves the window (a moving window). Successful sign-ins are not counted.
Counts are kept by `limits` in this process's memory; with several worker processes each keeps its own,
which multiplies an attacker's attempts by the number of workers, never a reviewer's lockout.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

PER_ACCOUNT = "10/5 minutes"
PER_CLIENT = "30/5 minutes"


class LoginThrottle:
    """Moving windows of failed sign-ins per (account, client) and per client; see the module docstring."""

    def __init__(
        self,
        per_account: str = PER_ACCOUNT,
        per_client: str = PER_CLIENT,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        self.per_account: RateLimitItem = parse(per_account)
        self.per_client: RateLimitItem = parse(per_client)
        self.clock = clock

    def _keys(self, account: str, client: str) -> tuple[tuple[RateLimitItem, tuple[str, ...]], ...]:
        account, client = account.strip().lower()[:64], client[:64]
        return (
            (self.per_account, ("login", "account", account, client)),
            (self.per_client, ("login", "client", client)),
        )

    def wait(self, account: str, client: str) -> float:
        """Seconds this client must wait before trying `account` again; 0.0 when it may try now."""
        wait = 0.0
        for item, ids in self._keys(account, client):
            if not self.limiter.test(item, *ids):
                reset = self.limiter.get_window_stats(item, *ids).reset_time
                wait = max(wait, reset - self.clock(), 1.0)
        return wait

    def failed(self, account: str, client: str) -> None:
        for item, ids in self._keys(account, client):
            self.limiter.hit(item, *ids)


def wait_text(seconds: float) -> str:
    minutes = math.ceil(seconds / 60)
    return f"{math.ceil(seconds)} s" if seconds < 90 else f"{minutes} minutes"


def too_many(seconds: float) -> str:
    """The sentence a throttled client reads, on REST and in the Review tab."""
    return (
        f"Too many failed sign-ins from your address: try again in {wait_text(seconds)}. "
        "Other reviewers are not affected."
    )
