"""Secrets generated once and kept in table `app_key`, the same for every process and every restart.

key = SqlKeys(db).get_or_create("reviewer-session", lambda: secrets.token_urlsafe(32))
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, select

from daca_kit.adapters.sql.database import SqlDatabase
from daca_kit.adapters.sql.tables import key_t
from daca_kit.core.clock import utcnow


class SqlKeys:
    """`KeyStore` on table `app_key`: insert if absent, then read back, so racing processes agree."""

    def __init__(self, db: SqlDatabase) -> None:
        self.db = db

    def __repr__(self) -> str:
        return "SqlKeys()"

    def get_or_create(self, name: str, make: Callable[[], str]) -> str:
        def work(conn: Connection) -> str:
            conn.execute(self.db.insert_ignore(key_t, "name", name=name, value=make(), created_at=utcnow()))
            return str(conn.execute(select(key_t.c.value).where(key_t.c.name == name)).scalar_one())

        existing = self.db.read(
            lambda conn: conn.execute(select(key_t.c.value).where(key_t.c.name == name)).scalar(),
            what="read a stored key",
        )
        if existing is not None:
            return str(existing)
        return str(self.db.run(work, what="store a generated key"))
