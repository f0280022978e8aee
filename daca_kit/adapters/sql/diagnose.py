"""The database's own sentences: what a driver failure means (`diagnose`), and doctor's round trip.

Each sentence names what to change in DATABASE_URL; `problem` tells a wrong host, a closed port, TLS, a
refused login and a missing database or permission apart.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from daca_kit.adapters.network import (
    chain_text,
    elapsed_ms,
    first_line,
    looks_tls,
    reach,
    unreachable,
    url_secrets,
)
from daca_kit.core.models import RoundTrip
from daca_kit.errors import AUTH, ERROR, MISSING, PORT_CLOSED, TLS, BackendError

if TYPE_CHECKING:
    from daca_kit.adapters.sql.database import SqlDatabase


def database_error(sentence: str, problem: str = ERROR) -> BackendError:
    return BackendError(sentence, backend="database", problem=problem)


def round_trip(db: SqlDatabase) -> RoundTrip:
    """Opens the server's port, runs one query, and finds the kit's tables or whether they may be created."""
    start = time.perf_counter()
    if db.kind != "sqlite":
        reach(
            db.host,
            db.port,
            setting="DATABASE_URL",
            what="the database server",
            timeout=db.connect_timeout or 5.0,
            error=database_error,
        )
    try:
        with db.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1").scalar()
            if inspect(conn).has_table("conversation"):
                conn.exec_driver_sql("SELECT id FROM conversation LIMIT 1").all()
                note = f"{db.kind} answered a query on table 'conversation'."
            elif _may_create_tables(conn) is False:
                raise BackendError(
                    f"The table 'conversation' does not exist and the user '{db.parsed.username}' in DATABASE_URL "
                    "may not create tables: grant it CREATE on the database's schema, or create the tables "
                    "once with a user that may.",
                    backend="database",
                    problem=MISSING,
                )
            else:
                note = (
                    f"{db.kind} answered; the tables are not created yet: the app creates them at its "
                    "first start (DATABASE_URL's user may do so)."
                )
    except SQLAlchemyError as exc:
        raise diagnose(db, exc) from exc
    return RoundTrip(elapsed_ms(start), note)


def diagnose(db: SqlDatabase, exc: BaseException) -> BackendError:
    """What a driver failure means, in one sentence that names what to change in DATABASE_URL."""
    orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    detail = f"{type(orig).__name__}: {first_line(orig, url_secrets(db.url))}"
    if db.kind == "sqlite":
        return database_error(f"The SQLite database failed ({detail}): check DATABASE_URL.")
    text = chain_text(orig)
    sqlstate = getattr(orig, "sqlstate", None)  # psycopg's SQLSTATE code
    where, user = f"{db.host}:{db.port}", db.parsed.username or "?"
    found = unreachable(
        orig,
        db.host,
        db.port,
        setting="DATABASE_URL",
        what="the database server",
        error=database_error,
    )
    if found is not None:
        return found
    if (
        "password authentication failed" in text
        or sqlstate in ("28000", "28P01")
        or ("role" in text and "does not exist" in text)
    ):
        return database_error(
            f"The database server at {where} refused the login of user '{user}': check the user name and "
            "password in DATABASE_URL.",
            AUTH,
        )
    if ("database" in text and "does not exist" in text) or sqlstate == "3D000":
        return database_error(
            f"The database '{db.parsed.database or '?'}' named in DATABASE_URL does not exist on {where}: create it, "
            "or fix the database name at the end of DATABASE_URL.",
            MISSING,
        )
    if "permission denied" in text or sqlstate == "42501":
        return database_error(
            f"The user '{user}' in DATABASE_URL lacks a permission on the kit's tables: grant it SELECT, "
            "INSERT, UPDATE and DELETE on them (and CREATE on the schema for the first start).",
            MISSING,
        )
    if looks_tls(text):
        return database_error(
            f"The TLS connection to the database at {where} failed ({first_line(orig, url_secrets(db.url))}): "
            "for CockroachDB put sslmode=verify-full and sslrootcert=<the cluster's CA file> in DATABASE_URL; "
            "for a server without TLS use sslmode=disable.",
            TLS,
        )
    if "timeout" in text or "timed out" in text:
        return database_error(
            f"The database at {where} did not answer in time: check the port in DATABASE_URL, that this "
            "host may reach it, and the server's load (DACA_DB_TIMEOUT sets how long the app waits).",
            PORT_CLOSED,
        )
    if "closed the connection" in text or "connection reset" in text or "broken pipe" in text:
        return database_error(
            f"The database at {where} dropped the connection: check that the server in DATABASE_URL is "
            "running; the next call reconnects."
        )
    return database_error(f"The database at {where} failed ({detail}): check DATABASE_URL.")


def _may_create_tables(conn: Connection) -> bool | None:
    """Whether the user may create tables in the current schema; None when the server cannot say."""
    try:
        return bool(conn.exec_driver_sql("SELECT has_schema_privilege(current_schema(), 'CREATE')").scalar())
    except Exception:  # noqa: BLE001 - not every server answers this; then we do not know
        return None
