"""Reviewer passwords stored as scrypt hashes (hashlib, OpenSSL's scrypt), in a form that fits DACA_REVIEWERS.

    stored = hash_password("a long passphrase")       # "scrypt$15$8$1$<salt>$<key>"
    verify_password("a long passphrase", stored)      # True

The form holds no ',' or ':' (DACA_REVIEWERS is `name:hash,name:hash`) and carries its own cost, so
stronger parameters can come later without breaking stored hashes. `daca-kit reviewer-hash NAME` prints
the `name:hash` entry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

LOG2_N, R, P = 15, 8, 1  # 32 MiB and ~0.1 s per check: cheap for one login, costly for a guesser
KEY_BYTES = 32
MIN_LENGTH = 12


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    n = 1 << log2_n
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, maxmem=2 * 128 * n * r * p + 1024 * 1024, dklen=KEY_BYTES
    )


def hash_password(password: str) -> str:
    """The stored form of `password`, with a fresh random salt."""
    salt = secrets.token_bytes(16)
    key = _scrypt(password, salt, LOG2_N, R, P)
    return f"scrypt${LOG2_N}${R}${P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches `stored` (constant time in the key; False for a malformed `stored`)."""
    try:
        scheme, log2_n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt" or not (10 <= int(log2_n) <= 20 and 1 <= int(r) <= 32 and 1 <= int(p) <= 16):
            return False
        expected = _unb64(key)
        actual = _scrypt(password, _unb64(salt), int(log2_n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


# Checked for names that have no password, so a wrong name costs the same time as a wrong password.
DUMMY_HASH = f"scrypt${LOG2_N}${R}${P}${_b64(bytes(16))}${_b64(bytes(KEY_BYTES))}"
