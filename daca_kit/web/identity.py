"""Who a chat user is: user ids this app issues, each with a signed token that proves it, and Hugging Face
users signed in on a Space.

    users = UserTokens(lambda: key)
    user_id, token = users.issue()        # ("guest-3f9a1c2b7d4e5f60@daca", "eyJ1Ijoi...")
    users.user_of(token)                  # "guest-3f9a1c2b7d4e5f60@daca", or None (forged, another key)
    bound("guest-3f9a1c2b7d4e5f60@daca"), bound("alice@hf"), bound("bob")   # True, True, False

A *bound* id belongs to one person: an id this app issued (`...@daca`, to a browser's Chat tab or by
`POST /users`), or a Hugging Face username signed in on the Space (`name@hf`). Chatting as a bound id or
reading its history needs its token (or, for `@hf`, Gradio's sign-in session), so nobody can read it or
write in its name. Ids that callers pick themselves (the tutorial's `bob`) stay open for chat as before;
their history needs a reviewer, the admin, or a token the admin issued for that id. Anonymous callers
only ever get new ids, so nobody can obtain a token for an id that someone else already uses.

Tokens are signed (itsdangerous) with the reviewer sessions' key (DACA_SESSION_SECRET, or the one kept in
the database) under their own salt; they do not expire, like the identity they carry, and need no
server-side state, so they work in every worker process and survive a restart.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from itsdangerous import BadData, URLSafeSerializer

from daca_kit.core.validation import valid_user_id

SALT = "daca-kit user v1"
ISSUED = "@daca"
HUGGING_FACE = "@hf"


def bound(user_id: str) -> bool:
    """Whether `user_id` belongs to one person (issued here, or a Hugging Face user): see the docstring."""
    return user_id.lower().endswith((ISSUED, HUGGING_FACE))


def hf_user_id(username: str) -> str:
    """The user id of a Hugging Face user signed in on the Space."""
    return valid_user_id(f"{username}{HUGGING_FACE}")


class UserTokens:
    """Issues user ids with their tokens and reads tokens back; see the module docstring."""

    def __init__(self, key: Callable[[], str]) -> None:
        self._key_source = key
        self._serializer: URLSafeSerializer | None = None

    def __repr__(self) -> str:
        return "UserTokens()"  # never the key

    @property
    def serializer(self) -> URLSafeSerializer:
        if self._serializer is None:
            self._serializer = URLSafeSerializer(self._key_source(), salt=SALT)
        return self._serializer

    def issue(self, user_id: str | None = None) -> tuple[str, str]:
        """A new user id (`guest-<16 hex>@daca`) and its token; with `user_id`, a token for that id (only
        the admin may ask for one: the caller checks)."""
        user_id = valid_user_id(user_id or f"guest-{secrets.token_hex(8)}{ISSUED}")
        return user_id, str(self.serializer.dumps({"u": user_id}))

    def user_of(self, token: Any) -> str | None:
        """The user id a token proves, or None."""
        if not isinstance(token, str) or not token or len(token) > 500:
            return None
        try:
            data = self.serializer.loads(token)
        except BadData:
            return None
        user = data.get("u") if isinstance(data, dict) else None
        return user if isinstance(user, str) else None
