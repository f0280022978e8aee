"""Per-user rate limit: a fixed window, in-process, or shared through Redis when Redis is configured.

limiter = LocalRateLimiter(20, 60)          # 20 messages a minute per user
allowed, retry_after = limiter.hit("alice")
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

from daca_kit.core.ports import RateWindows
from daca_kit.errors import BackendError


class RateLimiter(Protocol):
    """Admits or refuses one user's next message."""

    def hit(self, key: str) -> tuple[bool, float]: ...

    def admit(self, user_id: str) -> tuple[bool, float, int | None]:
        """Like `hit`, plus the user's message count when the limiter can read it in the same call."""
        ...


class LocalRateLimiter:
    """Fixed windows in this process's memory."""

    shared = False

    def __init__(self, limit: int, window: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._hits: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> tuple[bool, float]:
        if self.limit <= 0:
            return True, 0.0
        now = self.clock()
        with self._lock:
            start, n = self._hits.get(key, (now, 0))
            if now - start >= self.window:
                start, n = now, 0
            n += 1
            self._hits[key] = (start, n)
            if len(self._hits) > 100_000:
                self._hits = {k: v for k, v in self._hits.items() if now - v[0] < self.window}
        if n > self.limit:
            return False, max(0.0, self.window - (now - start))
        return True, 0.0

    def admit(self, user_id: str) -> tuple[bool, float, int | None]:
        allowed, retry_after = self.hit(user_id)
        return allowed, retry_after, None


class SharedRateLimiter:
    """Fixed windows in Redis (or Upstash), shared by every process; falls back to local if it fails."""

    shared = True

    def __init__(self, windows: RateWindows, limit: int, window: int) -> None:
        self.windows, self.limit, self.window = windows, limit, window
        self.fallback = LocalRateLimiter(limit, window)

    def hit(self, key: str) -> tuple[bool, float]:
        if self.limit <= 0:
            return True, 0.0
        try:
            return self.windows.hit(f"{key}:{self.window}", self.limit, self.window)
        except BackendError:
            return self.fallback.hit(key)

    def admit(self, user_id: str) -> tuple[bool, float, int | None]:
        """One Redis command: the shared rate limit and the user's message count."""
        if self.limit <= 0:
            return True, 0.0, None
        try:
            return self.windows.admit(user_id, self.limit, self.window)
        except BackendError:
            return (*self.fallback.hit(user_id), None)


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
