"""SQL storage on SQLite, Postgres or CockroachDB, one module per aggregate.

    stores = open_stores("sqlite:///data/daca.db"); stores.database.create_all()
    stores.conversations.store_turn(...); stores.reviews.decide_review(...)
    counters = SqlCounters(stores.database)       # the embedded analytics counters

`database` holds the engine and its transactions; `conversations`, `reviews`, `outbox`, `workflows` and
`keys` implement the core's store ports on it; `tables` declares the tables (SQLModel).
"""

from __future__ import annotations

from daca_kit.adapters.sql.conversations import SqlConversations
from daca_kit.adapters.sql.counters import SqlCounters
from daca_kit.adapters.sql.database import (
    DEFAULT_TIMEOUT,
    SqlDatabase,
    backend_kind,
    describe_url,
    normalize_url,
    server_address,
)
from daca_kit.adapters.sql.keys import SqlKeys
from daca_kit.adapters.sql.outbox import SqlOutbox
from daca_kit.adapters.sql.reviews import SqlReviews
from daca_kit.adapters.sql.workflows import SqlWorkflowStore
from daca_kit.core.ports import Stores

__all__ = [
    "SqlConversations",
    "SqlCounters",
    "SqlDatabase",
    "SqlKeys",
    "SqlOutbox",
    "SqlReviews",
    "SqlWorkflowStore",
    "backend_kind",
    "describe_url",
    "normalize_url",
    "open_stores",
    "server_address",
]


def open_stores(url: str, *, timeout: float = DEFAULT_TIMEOUT) -> Stores:
    """The four stores on one database (no connection is opened until the first call).

    `timeout`: how long one call may wait for a database that stopped answering (DACA_DB_TIMEOUT)."""
    db = SqlDatabase(url, timeout=timeout)
    outbox = SqlOutbox(db)
    workflows = SqlWorkflowStore(db)
    return Stores(
        database=db,
        conversations=SqlConversations(db, outbox),
        reviews=SqlReviews(db, outbox, workflows),
        outbox=outbox,
        workflows=workflows,
        keys=SqlKeys(db),
    )
