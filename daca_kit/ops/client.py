"""A small client for the kit's REST API (DESIGN.md's contract), for notebooks and scripts.

    client = KitClient("https://you-daca-prototype.hf.space", reviewer_password=pw, admin_token=token)
    expect(client.initialize("alice", 5), 200)
    pending = client.chat_in_background("bob", "This is an urgent request!", wait=60)
    review = client.wait_for_review("bob")
    expect(client.decide(review["instance_id"], approved=True), 200)
    body = expect(pending.result(), 200)

Every call returns the `httpx.Response`, so a caller can check the status itself; `expect` turns an
unexpected status into an AssertionError that quotes the server's `detail`. Credentials are sent only
where the contract asks for them and never appear in a message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import httpx


def expect(response: httpx.Response, *statuses: int) -> Any:
    """The response's JSON body when its status is one of `statuses`; else an AssertionError that says
    which call answered what."""
    if response.status_code not in statuses:
        try:
            detail = response.json().get("detail", response.text)
        except (ValueError, AttributeError):
            detail = response.text[:300]
        wanted = " or ".join(str(s) for s in statuses)
        raise AssertionError(
            f"{response.request.method} {response.request.url.path} answered {response.status_code}, "
            f"expected {wanted}: {detail}"
        )
    try:
        return response.json()
    except ValueError:
        return response.text


def wait_for(
    check: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.2, what: str = "the condition"
) -> Any:
    """Calls `check` until it returns something truthy and returns that; AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"Waited {timeout:g} s for {what}; last value: {last!r}")
        time.sleep(interval)


class KitClient:
    """The REST API of one running app."""

    def __init__(
        self,
        base_url: str,
        *,
        reviewer_password: str | None = None,
        admin_token: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._reviewer_password = reviewer_password
        self._admin_token = admin_token
        host = urlsplit(self.base_url).hostname or ""
        # Loopback needs no proxy; a remote Space may need the environment's.
        local = host in ("localhost", "::1") or host.startswith("127.")
        self.http = httpx.Client(
            base_url=self.base_url, timeout=timeout, trust_env=not local, transport=transport
        )
        self._pool: ThreadPoolExecutor | None = None

    def __repr__(self) -> str:
        return f"KitClient({self.base_url!r})"

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self.http.close()

    def __enter__(self) -> KitClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- credentials -------------------------------------------------------------------------------
    def _admin(self, authorized: bool) -> dict[str, str]:
        if authorized and self._admin_token:
            return {"Authorization": f"Bearer {self._admin_token}"}
        return {}

    def _reviewer(self, authorized: bool) -> Any:
        if authorized and self._reviewer_password:
            return httpx.BasicAuth("reviewer", self._reviewer_password)
        return httpx.USE_CLIENT_DEFAULT  # the client has no auth: the request goes without credentials

    # -- the contract ------------------------------------------------------------------------------
    def health(self) -> httpx.Response:
        return self.http.get("/health")

    def chat(
        self,
        user_id: str,
        text: str,
        *,
        metadata: dict[str, Any] | None = None,
        tags: list[str] | None = None,
        wait: float | None = None,
    ) -> httpx.Response:
        """POST /chat/: 200 with the reply, or 202 while the turn waits for a reviewer longer than `wait` s."""
        body: dict[str, Any] = {"user_id": user_id, "text": text}
        if metadata is not None:
            body["metadata"] = metadata
        if tags is not None:
            body["tags"] = tags
        params = {"wait": wait} if wait is not None else None
        read = self.http.timeout.read or 30.0
        return self.http.post("/chat/", json=body, params=params, timeout=read + (wait or 0))

    def chat_in_background(self, user_id: str, text: str, **kwargs: Any) -> Future[httpx.Response]:
        """`chat` in a worker thread, like a user whose request waits while a reviewer decides."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="kit-client")
        return self._pool.submit(self.chat, user_id, text, **kwargs)

    def turn(self, instance_id: str) -> httpx.Response:
        return self.http.get(f"/chat/{instance_id}")

    def conversations(self, user_id: str, limit: int = 50, *, token: str | None = None) -> httpx.Response:
        """GET /conversations/{user_id}: with the user's `token`, else as the admin (a history is not public)."""
        headers = {"Authorization": f"Bearer {token}"} if token else self._admin(True)
        return self.http.get(f"/conversations/{user_id}", params={"limit": limit}, headers=headers)

    def analytics(self, user_id: str) -> httpx.Response:
        return self.http.get(f"/analytics/{user_id}")

    def message_count(self, user_id: str) -> int | None:
        return expect(self.analytics(user_id), 200).get("message_count")  # type: ignore[no-any-return]

    def initialize(self, user_id: str, message_count: int, *, authorized: bool = True) -> httpx.Response:
        return self.http.post(
            f"/analytics/{user_id}/initialize",
            json={"message_count": message_count},
            headers=self._admin(authorized),
        )

    def reset(self, *, authorized: bool = True) -> httpx.Response:
        """POST /analytics/reset, as cron-job.org sends it (with the admin token) or without it."""
        return self.http.post("/analytics/reset", headers=self._admin(authorized))

    def reviews(self, status: str = "pending", *, authorized: bool = True) -> httpx.Response:
        return self.http.get("/reviews", params={"status": status}, auth=self._reviewer(authorized))

    def decide(
        self,
        instance_id: str,
        *,
        approved: bool,
        reply: str | None = None,
        reason: str | None = None,
        authorized: bool = True,
    ) -> httpx.Response:
        body: dict[str, Any] = {"approved": approved}
        if reply is not None:
            body["reply"] = reply
        if reason is not None:
            body["reason"] = reason
        return self.http.post(f"/reviews/{instance_id}", json=body, auth=self._reviewer(authorized))

    def usage(self) -> httpx.Response:
        return self.http.get("/usage")

    # -- waiting -----------------------------------------------------------------------------------
    def wait_for_review(
        self, user_id: str, *, text: str | None = None, timeout: float = 30.0
    ) -> dict[str, Any]:
        """The oldest pending review of `user_id` (with message `text`, if given), once it appears."""

        def find() -> dict[str, Any] | None:
            for review in expect(self.reviews(), 200):
                if review["user_id"] == user_id and (text is None or review["message"] == text):
                    return dict(review)
            return None

        return wait_for(find, timeout=timeout, interval=0.2, what=f"a pending review from {user_id}")  # type: ignore[no-any-return]

    def wait_for_count(self, user_id: str, expected: int, *, timeout: float = 30.0) -> int:
        """Waits until GET /analytics/{user_id} says `expected` (the count is updated by an event)."""
        seen: list[int | None] = []

        def reached() -> bool:
            seen.append(self.message_count(user_id))
            return seen[-1] == expected

        try:
            wait_for(reached, timeout=timeout, what=f"message_count:{user_id} to reach {expected}")
        except AssertionError:
            raise AssertionError(
                f"message_count:{user_id} is {seen[-1] if seen else None} after {timeout:g} s; expected {expected}"
            ) from None
        return expected
