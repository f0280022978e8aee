"""Analytics counters on a Dapr state store (`DACA_RUNTIME=dapr`), over the sidecar's HTTP API.

counters = DaprCounters.from_settings(settings)     # state API, store DACA_DAPR_STATESTORE
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from daca_kit.adapters.dapr.sidecar import HEALTH_PATH, DaprSidecar, checked_sidecar, dapr_error
from daca_kit.core.analytics import COUNT_KEY
from daca_kit.core.models import Backend
from daca_kit.errors import CountersError

if TYPE_CHECKING:
    from daca_kit.settings import Settings

USERS_KEY = "message_count_users"  # outside message_count:*, so no user id can collide with it
RECENT_EVENTS = 256


class DaprCounters:
    """`Counters` on a Dapr state store (Upstash Redis in the prototype), over the sidecar's HTTP API.

        counters = DaprCounters(DaprSidecar("http://127.0.0.1:3500"), store="statestore")

    `message_count:{user_id}` holds `{"count": n, "recent": [event ids]}`. The event id is recorded in
    the same value the count is, so counting and marking are one write guarded by the key's ETag
    (first-write concurrency: a stale ETag is refused with 409 and the adapter reads and tries again).
    A separate mark key would need a transaction, and on the Redis state store a transaction is a
    MULTI of scripts that does not roll back the mark when the ETag check of the count fails, which
    would lose the count. The last RECENT_EVENTS ids per user are kept: redeliveries come within
    minutes, long before a user sends 256 more messages.

    The state API cannot list keys on every store, so `message_count_users` keeps the user ids,
    also ETag-guarded; `reset()` walks it. A reset sets counts to zero and keeps each counter's recent
    ids, so an event counted before a reset and redelivered after it still counts once.
    """

    name = "dapr-state"

    def __init__(self, sidecar: DaprSidecar, store: str = "statestore", *, max_attempts: int = 50) -> None:
        self.sidecar = sidecar
        self.store = store
        self.max_attempts = max_attempts
        self.backend = Backend("dapr-state", f"dapr-state:{store}", "Dapr state store")
        self.commands = 0
        self.conflicts = 0
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: Settings, *, wait: float | None = None, transport: httpx.BaseTransport | None = None
    ) -> DaprCounters:
        return cls(checked_sidecar(settings, wait=wait, transport=transport), settings.dapr_statestore)

    @property
    def calls(self) -> int:
        return self.commands

    # -- state primitives ----------------------------------------------------------------------
    def _request(self, method: str, path: str, what: str, **kwargs: Any) -> httpx.Response:
        with self._lock:
            self.commands += 1
        return self.sidecar.request(method, path, what=what, error=CountersError, **kwargs)

    def _fail(self, what: str, response: httpx.Response) -> CountersError:
        code, message = dapr_error(response)
        if code in ("ERR_STATE_STORE_NOT_FOUND", "ERR_STATE_STORES_NOT_CONFIGURED"):
            return CountersError(
                f"Could not {what}: the Dapr sidecar has no state store named '{self.store}': check metadata.name "
                "in components/statestore.yaml and DACA_DAPR_STATESTORE, and the daprd log for why it did not load"
            )
        detail = f"{code}: {message}" if code else message or f"HTTP {response.status_code}"
        return CountersError(
            f"Could not {what}: the Dapr state store '{self.store}' failed ({detail}); check that its Redis is "
            "reachable from daprd (REDIS_HOST, REDIS_PASSWORD, REDIS_ENABLE_TLS for Upstash)"
        )

    def _key_path(self, key: str) -> str:
        return f"/v1.0/state/{quote(self.store, safe='')}/{quote(key, safe='')}"

    def _get(self, key: str, what: str) -> tuple[Any, str | None]:
        response = self._request("GET", self._key_path(key), what, params={"consistency": "strong"})
        if response.status_code == 204 or (response.status_code == 200 and not response.content):
            return None, None
        if response.status_code != 200:
            raise self._fail(what, response)
        try:
            value = response.json()
        except ValueError as exc:
            raise CountersError(
                f"Could not {what}: the state store returned a value that is not JSON for {key}"
            ) from exc
        return value, response.headers.get("etag")

    def _save(self, key: str, value: Any, etag: str | None, what: str) -> bool:
        """Writes `value` if the key still has `etag` (or, with no etag, does not exist yet).

        Returns False when another writer got there first. A refused create cannot be told apart
        from a failure by status on every store (Redis answers 500 "failed to set key"), so the key
        is read again: if it exists now, the create lost a race.
        """
        item: dict[str, Any] = {
            "key": key,
            "value": value,
            "options": {"concurrency": "first-write", "consistency": "strong"},
        }
        if etag is not None:
            item["etag"] = etag
        response = self._request("POST", f"/v1.0/state/{quote(self.store, safe='')}", what, json=[item])
        if 200 <= response.status_code < 300:
            return True
        if response.status_code == 409:
            self._conflict()
            return False
        if etag is None:
            _, now = self._get(key, what)
            if now is not None:
                self._conflict()
                return False
        raise self._fail(what, response)

    def _conflict(self) -> None:
        with self._lock:
            self.conflicts += 1

    def _retry(self, attempt: int) -> None:
        # Jittered backoff: writers that collided do not collide again in lockstep.
        time.sleep(random.uniform(0, min(0.05, 0.002 * (2**attempt))))

    def _too_busy(self, what: str, key: str) -> CountersError:
        return CountersError(
            f"Could not {what}: {key} kept changing under concurrent writers for {self.max_attempts} attempts; "
            "try again (a MessageSent event is delivered again by the broker)"
        )

    @staticmethod
    def _record(value: Any) -> tuple[int, list[str]]:
        if isinstance(value, dict):
            return int(value.get("count") or 0), [str(e) for e in value.get("recent") or []]
        if isinstance(value, int | float | str) and str(value).strip().lstrip("-").isdigit():
            return int(value), []  # a bare number written by hand or by an older version
        return 0, []

    def _register(self, user_id: str) -> None:
        """Adds `user_id` to the users key (once), so that `reset` and `all` find its counter."""
        what = "register the user's counter"
        for attempt in range(self.max_attempts):
            value, etag = self._get(USERS_KEY, what)
            users = list((value or {}).get("users") or []) if isinstance(value, dict) else []
            if user_id in users:
                return
            if self._save(USERS_KEY, {"users": [*users, user_id]}, etag, what):
                return
            self._retry(attempt)
        raise self._too_busy(what, USERS_KEY)

    def _users(self, what: str) -> list[str]:
        value, _ = self._get(USERS_KEY, what)
        return [str(u) for u in (value or {}).get("users") or []] if isinstance(value, dict) else []

    def _update(
        self, user_id: str, what: str, change: Callable[[int, list[str]], tuple[int, list[str]] | None]
    ) -> tuple[int, bool]:
        """Read-modify-write of one counter under its ETag: (count after, whether it was written).
        `change` gets (count, recent ids) and returns the new pair, or None to leave the counter."""
        key = COUNT_KEY.format(user_id)
        for attempt in range(self.max_attempts):
            value, etag = self._get(key, what)
            count, recent = self._record(value)
            changed = change(count, recent)
            if changed is None:
                return count, False
            if etag is None:
                self._register(user_id)  # before the counter exists: a crash leaves no unlisted counter
            new_count, new_recent = changed
            if self._save(key, {"count": new_count, "recent": new_recent[-RECENT_EVENTS:]}, etag, what):
                return new_count, True
            self._retry(attempt)
        raise self._too_busy(what, key)

    # -- the Counters port -----------------------------------------------------------------------
    def get(self, user_id: str) -> int:
        value, _ = self._get(COUNT_KEY.format(user_id), "read the message count")
        return self._record(value)[0]

    def set(self, user_id: str, value: int) -> None:
        self._update(user_id, "set the message count", lambda _count, recent: (int(value), recent))

    def increment_once(self, user_id: str, event_id: str) -> int:
        def count(current: int, recent: list[str]) -> tuple[int, list[str]] | None:
            if event_id in recent:
                return None  # counted before: a redelivery
            return current + 1, [*recent, event_id]

        return self._update(user_id, "count the message", count)[0]

    def increment_many(self, events: Sequence[tuple[str, str]]) -> int:
        """One read-modify-write per user with all of that user's events (each record is its own ETag)."""
        by_user: dict[str, list[str]] = {}
        for user_id, event_id in events:
            by_user.setdefault(user_id, []).append(event_id)
        return sum(self._count_new(user_id, event_ids) for user_id, event_ids in by_user.items())

    def _count_new(self, user_id: str, event_ids: list[str]) -> int:
        new: list[str] = []

        def count(current: int, recent: list[str]) -> tuple[int, list[str]] | None:
            new[:] = dict.fromkeys(e for e in event_ids if e not in recent)
            return (current + len(new), [*recent, *new]) if new else None

        return len(new) if self._update(user_id, "count the messages", count)[1] else 0

    def reset(self) -> int:
        cleared = 0
        for user_id in self._users("reset the counters"):
            _, written = self._update(
                user_id, "reset the counters", lambda c, recent: (0, recent) if c else None
            )
            cleared += written
        return cleared

    def all(self, limit: int = 1000) -> dict[str, int]:
        users = self._users("list the counters")[:limit]
        if not users:
            return {}
        what = "list the counters"
        response = self._request(
            "POST",
            f"/v1.0/state/{quote(self.store, safe='')}/bulk",
            what,
            json={"keys": [COUNT_KEY.format(u) for u in users], "parallelism": 10},
        )
        if response.status_code != 200:
            raise self._fail(what, response)
        prefix = len(COUNT_KEY.format(""))
        counts: dict[str, int] = {}
        for item in response.json() or []:
            if item.get("key", "").startswith(COUNT_KEY.format("")) and "data" in item:
                counts[item["key"][prefix:]] = self._record(item.get("data"))[0]
        return counts

    def ping(self) -> None:
        problem = self.sidecar.probe()
        if problem is not None:
            raise CountersError(
                f"The Dapr sidecar at {self.sidecar.endpoint} is {problem} ({HEALTH_PATH}): is daprd still running?"
            )

    def close(self) -> None:
        self.sidecar.close()
