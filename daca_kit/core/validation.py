"""What the kit accepts from callers: user ids, message text and instance ids, each refused with a sentence.

user_id, text = validate_turn(user_id, text)       # InputError saying what is wrong
known_id(instance_id)                               # NotFound for ids the kit never makes
"""

from __future__ import annotations

import re
from typing import Any

from daca_kit.errors import InputError, NotFound

# Matched whole (fullmatch): `$` would also match before a final newline, letting "bob\n" pass as a user
# distinct from "bob".
USER_ID = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
INSTANCE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
MAX_TEXT = 4000
MAX_REASON = 1000


def valid_user_id(user_id: Any) -> str:
    if not isinstance(user_id, str) or not USER_ID.fullmatch(user_id):
        raise InputError("user_id must be 1 to 64 characters of letters, digits, '_', '.', '@' or '-'.")
    return user_id


def validate_turn(user_id: Any, text: Any) -> tuple[str, str]:
    """Returns (user_id, text) or raises InputError with a sentence saying what is wrong."""
    valid_user_id(user_id)
    if not isinstance(text, str) or not text.strip():
        raise InputError("text must not be empty.")
    if len(text) > MAX_TEXT:
        raise InputError(f"text is {len(text)} characters long; the limit is {MAX_TEXT}.")
    check_storable("text", text)
    return user_id, text


def check_storable(name: str, text: str) -> None:
    """Refuses text that no database can store: NUL characters (Postgres) and lone surrogates (UTF-8)."""
    if "\x00" in text:
        raise InputError(f"{name} must not contain NUL characters.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{name} is not valid Unicode text (it holds a lone surrogate).") from None


def known_id(instance_id: Any) -> str:
    """An instance id as the kit makes them, or NotFound (odd ids never reach the database)."""
    if not isinstance(instance_id, str) or not INSTANCE_ID.fullmatch(instance_id):
        raise NotFound(f"No chat turn or review with id '{str(instance_id)[:80]}'.")
    return instance_id


def validate_decision(reply: str | None, reason: str | None) -> str | None:
    """Checks a reviewer's reply and reason; returns the reply, or None when it is blank."""
    for name, value in (("reply", reply), ("reason", reason)):
        if value is not None:
            check_storable(name, value)
    if reply is not None and len(reply) > MAX_TEXT:
        raise InputError(f"reply is {len(reply)} characters long; the limit is {MAX_TEXT}.")
    if reason is not None and len(reason) > MAX_REASON:
        raise InputError("reason is longer than 1,000 characters.")
    return reply if reply and reply.strip() else None
