"""Reviewer logins for the Review and Usage tabs: tokens issued on the reviewer password, kept server-side."""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import gradio as gr

from daca_kit.web.auth import REVIEWER, Auth

LOGIN_FIRST = "Log in as a reviewer first: the Review tab asks for the reviewer password."


class ReviewerSessions:
    """Reviewer logins: tokens issued on a correct password, kept server-side, valid for `ttl` seconds.

        token = sessions.login(password, host)   # None when refused; sessions.valid(token) -> bool

    Failed logins are limited per client address (`max_failures` per `window` seconds).
    """

    def __init__(
        self,
        auth: Auth,
        *,
        ttl: float = 12 * 3600,
        max_failures: int = 10,
        window: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.auth = auth
        self.ttl = ttl
        self.max_failures = max_failures
        self.window = window
        self.clock = clock
        self._tokens: dict[str, float] = {}
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def blocked(self, host: str) -> bool:
        now = self.clock()
        with self._lock:
            recent = self._failures.get(host)
            if recent is None:
                return False
            while recent and now - recent[0] > self.window:
                recent.popleft()
            return len(recent) >= self.max_failures

    def login(self, password: str, host: str) -> str | None:
        if self.blocked(host):
            return None
        if not self.auth.check_reviewer(REVIEWER, str(password or "")):
            with self._lock:
                self._failures.setdefault(host, deque()).append(self.clock())
                if len(self._failures) > 10_000:
                    self._failures.pop(next(iter(self._failures)))
            return None
        token = secrets.token_urlsafe(24)
        now = self.clock()
        with self._lock:
            self._tokens = {t: exp for t, exp in self._tokens.items() if exp > now}
            self._tokens[token] = now + self.ttl
        return token

    def valid(self, token: Any) -> bool:
        if not isinstance(token, str) or not token:
            return False
        with self._lock:
            expires = self._tokens.get(token)
        return expires is not None and expires > self.clock()

    def require(self, token: Any) -> None:
        """Refuses a review function called without a valid login (Gradio's HTTP API reaches them all)."""
        if not self.valid(token):
            raise gr.Error(LOGIN_FIRST, print_exception=False)

    def logout(self, token: Any) -> None:
        with self._lock:
            self._tokens.pop(token, None)
