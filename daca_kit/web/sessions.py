"""Reviewer sessions as signed tokens with an expiry (itsdangerous): no server-side session state, so a
session survives a restart and works in every worker process that has the same key.

    tokens = SessionTokens(lambda: key, ttl=12 * 3600)
    token = tokens.issue("alice", fingerprint)          # kept by the browser (the Review tab)
    tokens.read(token)                                  # ("alice", fingerprint), or None

The key comes from DACA_SESSION_SECRET or is generated once and kept in the database (`KeyStore`); it is
read on first use and never shown. A token is refused once older than `ttl`, when its signature does not
match, or (checked by `Auth`) when its account's password changed since: the fingerprint says which.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from itsdangerous import BadData, TimestampSigner, URLSafeTimedSerializer

SALT = "daca-kit reviewer session v1"


def _signer(clock: Callable[[], float]) -> type[TimestampSigner]:
    class ClockSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(clock())

    return ClockSigner


class SessionTokens:
    """Issues and reads signed, expiring reviewer tokens; see the module docstring."""

    def __init__(self, key: Callable[[], str], *, ttl: float, clock: Callable[[], float] = time.time) -> None:
        self._key_source = key
        self._serializer: URLSafeTimedSerializer | None = None
        self.ttl = ttl
        self.clock = clock

    def __repr__(self) -> str:
        return f"SessionTokens(ttl={self.ttl:g})"  # never the key

    @property
    def serializer(self) -> URLSafeTimedSerializer:
        if self._serializer is None:
            self._serializer = URLSafeTimedSerializer(
                self._key_source(), salt=SALT, signer=_signer(self.clock)
            )
        return self._serializer

    def issue(self, name: str, fingerprint: str) -> str:
        return str(self.serializer.dumps({"r": name, "f": fingerprint}))

    def read(self, token: Any) -> tuple[str, str] | None:
        if not isinstance(token, str) or not token or len(token) > 1000:
            return None
        try:
            data = self.serializer.loads(token, max_age=int(self.ttl))
        except BadData:
            return None
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("r"), str)
            or not isinstance(data.get("f"), str)
        ):
            return None
        return data["r"], data["f"]
