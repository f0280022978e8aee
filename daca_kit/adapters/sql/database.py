"""The SQL database under the stores: one engine for SQLite, Postgres or CockroachDB, transactions with
CockroachDB's retry rule, and the statement meter.

    db = SqlDatabase("postgresql://user:pw@host/db"); db.create_all()
    rows = db.read(lambda conn: conn.execute(query).all(), what="read conversations")

Writes that belong together go in one transaction (`run`): a turn and its MessageSent event; a review
decision and the workflow event that resumes the turn. On CockroachDB a transaction that hits a
serialization conflict (SQLSTATE 40001) is retried, as CockroachDB asks clients to do.

A failure leaves as a `BackendError` whose sentence tells a wrong host, a closed port, TLS, a refused
login and a missing database or permission apart (`problem`); `check` is `daca-kit doctor`'s round trip.

A database that stops answering fails each call within `timeout` seconds (DACA_DB_TIMEOUT): connecting
(psycopg's `connect_timeout`, unless DATABASE_URL sets its own), waiting for a pool slot, and every
transaction (a deadline, `deadline.py`, since psycopg itself would wait for ever). After such a failure
every call fails at once for a second (`outage`), so a chat turn pays for one timeout, not one per
statement, and the first call after that tries again: the kit recovers by itself when the database does.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, event, inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import StaticPool
from sqlmodel import SQLModel

from daca_kit.adapters.network import (
    chain_text,
    elapsed_ms,
    first_line,
    looks_tls,
    reach,
    unreachable,
    url_secrets,
)
from daca_kit.adapters.sql.deadline import Outage, Watchdog
from daca_kit.core.models import Backend, RoundTrip
from daca_kit.errors import AUTH, ERROR, MISSING, PORT_CLOSED, TLS, BackendError, ConfigError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 3.0  # seconds; DACA_DB_TIMEOUT

DESCRIPTIONS = {
    "sqlite": "SQLite file (embedded)",
    "postgres": "PostgreSQL",
    "cockroachdb": "CockroachDB",
}


def normalize_url(url: str) -> str:
    """Chooses the psycopg 3 driver for Postgres and CockroachDB URLs."""
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme in ("postgres", "postgresql"):
        return "postgresql+psycopg://" + rest
    if scheme == "cockroachdb":
        return "cockroachdb+psycopg://" + rest
    return url


# Query parameters that carry secrets (libpq accepts `?password=` and `?sslpassword=`).
SECRET_QUERY_WORDS = ("password", "passwd", "pwd", "secret", "token")


def describe_url(url: str) -> str:
    """The URL without its password, in the user info or the query, for messages and the doctor."""
    try:
        parsed = make_url(normalize_url(url))
        hidden = {k: "***" for k in parsed.query if any(w in k.lower() for w in SECRET_QUERY_WORDS)}
        return parsed.update_query_dict(hidden).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a description must never fail
        return url.split("://", 1)[0] + "://…"


def backend_kind(url: str) -> str:
    scheme = url.split("://", 1)[0].lower()
    if scheme.startswith("sqlite"):
        return "sqlite"
    if scheme.startswith("cockroach"):
        return "cockroachdb"
    return "postgres"


def server_address(url: str | URL) -> tuple[str, int]:
    """(host, port) of a Postgres or CockroachDB URL, with the default port of its kind."""
    parsed = url if isinstance(url, URL) else make_url(normalize_url(url))
    port = parsed.port or (26257 if parsed.drivername.startswith("cockroach") else 5432)
    return parsed.host or "localhost", port


def database_backend(url: str) -> Backend:
    """The database as /health names it: its kind only (the URL names a host; logs show `describe_url`)."""
    kind = backend_kind(url)
    return Backend(kind, kind, DESCRIPTIONS[kind], embedded=kind == "sqlite")


class SqlDatabase:
    """One engine, its transactions and its statement count. Thread-safe.

        db = SqlDatabase(url, timeout=3.0)   # a call to a database that stopped answering fails in ~3 s

    `timeout` (seconds, DACA_DB_TIMEOUT) bounds each call, connecting included (a `connect_timeout` in
    DATABASE_URL is kept); `connect_timeout` (doctor's) bounds new server connections instead, whatever
    the URL says.
    """

    def __init__(
        self,
        url: str,
        *,
        engine: Engine | None = None,
        echo: bool = False,
        connect_timeout: float | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.url = url
        self.kind = backend_kind(url)
        self.backend = database_backend(url)
        self.statements = 0
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.outage = Outage(cooldown=1.0)  # after the database was found out of reach, calls fail at once
        self._watchdog = Watchdog()
        try:
            self._parsed = make_url(normalize_url(url))
        except Exception as exc:  # noqa: BLE001 - any parse failure is the same finding
            raise ConfigError("DATABASE_URL is not a valid database URL: check its form.") from exc
        self._host, self._port = server_address(self._parsed)
        self._count_lock = threading.Lock()
        self.engine = engine or self._make_engine(echo)
        event.listen(self.engine, "before_cursor_execute", self._count_statement)
        if self.kind != "sqlite":  # a file does not stop answering; it has its own busy timeout
            event.listen(self.engine, "connect", self._remember_socket)

    def __repr__(self) -> str:
        return f"SqlDatabase({describe_url(self.url)!r})"  # never the password

    @property
    def calls(self) -> int:
        return self.statements

    # -- engine -------------------------------------------------------------------------------
    def _make_engine(self, echo: bool) -> Engine:
        full, parsed = normalize_url(self.url), self._parsed
        if self.kind == "sqlite":
            database = parsed.database or ""
            memory = database in ("", ":memory:")
            if not memory:
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
            if memory:
                kwargs["poolclass"] = StaticPool
            engine = create_engine(full, echo=echo, **kwargs)

            @event.listens_for(engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                cur = dbapi_conn.cursor()
                if not memory:
                    cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA busy_timeout=30000")
                cur.close()

            return engine
        # No pre-ping: it would double the statements (and CockroachDB request units) per turn.
        # Connections are recycled before serverless idle cut-offs, and a dropped one is retried once.
        server_args: dict[str, Any] = {}
        if self.connect_timeout is not None:
            server_args["connect_timeout"] = max(1, math.ceil(self.connect_timeout))  # whole seconds in libpq
        elif "connect_timeout" not in parsed.query:
            server_args["connect_timeout"] = max(2, math.ceil(self.timeout))  # psycopg waits 2 s at least
        return create_engine(
            full,
            echo=echo,
            pool_size=10,
            max_overflow=30,
            pool_recycle=240,
            pool_timeout=self.timeout,
            connect_args=server_args,
        )

    def _remember_socket(self, dbapi_conn: Any, record: Any) -> None:
        self._watchdog.remember(dbapi_conn, record.info)

    def insert(self, table: Any) -> Any:
        """The dialect's INSERT, which has ON CONFLICT (SQLite, Postgres and CockroachDB all do)."""
        return (sqlite.insert if self.kind == "sqlite" else postgresql.insert)(table)

    def insert_ignore(self, table: Any, key: str, **values: Any) -> Any:
        """INSERT ... ON CONFLICT (key) DO NOTHING RETURNING key: `.first()` is None when the row existed."""
        return (
            self.insert(table)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[key])
            .returning(table.c[key])
        )

    def _count_statement(self, *_args: Any) -> None:
        with self._count_lock:
            self.statements += 1

    def create_all(self) -> None:
        try:
            SQLModel.metadata.create_all(self.engine)
        except SQLAlchemyError as exc:
            raise self.explain(exc, "create the tables") from exc

    def close(self) -> None:
        self._watchdog.close()
        self.engine.dispose()

    # -- transactions -------------------------------------------------------------------------
    def run(self, work: Callable[[Connection], Any], *, what: str) -> Any:
        """Runs `work` in a transaction; retries CockroachDB conflicts and one dropped connection."""
        self.outage.check(what)
        attempts = 0
        while True:
            attempts += 1
            guard = None
            try:
                with self.engine.connect() as conn, self._deadline(conn) as guard, conn.begin():
                    result = work(conn)
                self.outage.end()
                return result
            except DBAPIError as exc:
                expired = guard is not None and guard.expired
                sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
                retry = not expired and (
                    (sqlstate == "40001" and attempts < 8) or (exc.connection_invalidated and attempts < 2)
                )
                if retry:
                    time.sleep(min(0.01 * 2**attempts, 0.5))
                    continue
                raise self._failed(exc, what, expired=expired) from exc
            except SQLAlchemyError as exc:
                raise self._failed(exc, what) from exc

    def explain(self, exc: Exception, what: str) -> BackendError:
        """The error for a failed `what` ("store the turn"): the database's sentence, and its `problem`."""
        found = self._diagnose(exc)
        return BackendError(
            f"The database could not {what}: {found}", backend="database", problem=found.problem
        )

    def read(self, work: Callable[[Connection], Any], *, what: str) -> Any:
        """A single-statement read: no transaction of its own where the database allows (saves a COMMIT)."""
        if self.kind == "sqlite":
            return self.run(work, what=what)
        self.outage.check(what)
        guard = None
        try:
            with (
                self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn,
                self._deadline(conn) as guard,
            ):
                result = work(conn)
            self.outage.end()
            return result
        except DBAPIError as exc:
            expired = guard is not None and guard.expired
            if exc.connection_invalidated and not expired:
                return self.run(work, what=what)
            raise self._failed(exc, what, expired=expired) from exc
        except SQLAlchemyError as exc:
            raise self._failed(exc, what) from exc

    # -- a database that stops answering ---------------------------------------------------------
    def _deadline(self, conn: Connection) -> Any:
        return self._watchdog.guard(conn.connection.info, self.timeout)

    def _failed(self, exc: SQLAlchemyError, what: str, *, expired: bool = False) -> BackendError:
        """The error for a failed call; an unreachable database also makes calls fail fast a while."""
        if expired:
            found = self._error(
                f"The database at {self._host}:{self._port} did not answer within {self.timeout:g} s "
                "(DACA_DB_TIMEOUT): check that the server in DATABASE_URL is up and this host may reach it.",
                PORT_CLOSED,
            )
        elif isinstance(exc, PoolTimeout):
            found = self._error(
                f"All of the app's database connections stayed busy for {self.timeout:g} s (DACA_DB_TIMEOUT): "
                "the app is overloaded or the server in DATABASE_URL is slow; try again shortly."
            )
        else:
            found = self._diagnose(exc)
        lost = isinstance(exc, OperationalError) or (
            isinstance(exc, DBAPIError) and exc.connection_invalidated
        )
        if self.kind != "sqlite" and (expired or lost):
            self.outage.begin(found)
        return BackendError(
            f"The database could not {what}: {found}", backend="database", problem=found.problem
        )

    def ping(self) -> None:
        self.run(lambda c: c.exec_driver_sql("SELECT 1").scalar(), what="answer a query")

    # -- doctor's round trip and the failures' sentences ----------------------------------------
    def check(self) -> RoundTrip:
        """Opens the server's port, runs one query, and finds the kit's tables or whether they may be created."""
        start = time.perf_counter()
        if self.kind != "sqlite":
            reach(
                self._host,
                self._port,
                setting="DATABASE_URL",
                what="the database server",
                timeout=self.connect_timeout or 5.0,
                error=self._error,
            )
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1").scalar()
                if inspect(conn).has_table("conversation"):
                    conn.exec_driver_sql("SELECT id FROM conversation LIMIT 1").all()
                    note = f"{self.kind} answered a query on table 'conversation'."
                elif _may_create_tables(conn) is False:
                    raise BackendError(
                        f"The table 'conversation' does not exist and the user '{self._parsed.username}' in DATABASE_URL "
                        "may not create tables: grant it CREATE on the database's schema, or create the tables "
                        "once with a user that may.",
                        backend="database",
                        problem=MISSING,
                    )
                else:
                    note = (
                        f"{self.kind} answered; the tables are not created yet: the app creates them at its "
                        "first start (DATABASE_URL's user may do so)."
                    )
        except SQLAlchemyError as exc:
            raise self._diagnose(exc) from exc
        return RoundTrip(elapsed_ms(start), note)

    def _diagnose(self, exc: BaseException) -> BackendError:
        """What a driver failure means, in one sentence that names what to change in DATABASE_URL."""
        orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
        detail = f"{type(orig).__name__}: {first_line(orig, url_secrets(self.url))}"
        if self.kind == "sqlite":
            return self._error(f"The SQLite database failed ({detail}): check DATABASE_URL.")
        text = chain_text(orig)
        sqlstate = getattr(orig, "sqlstate", None)  # psycopg's SQLSTATE code
        where, user = f"{self._host}:{self._port}", self._parsed.username or "?"
        found = unreachable(
            orig,
            self._host,
            self._port,
            setting="DATABASE_URL",
            what="the database server",
            error=self._error,
        )
        if found is not None:
            return found
        if (
            "password authentication failed" in text
            or sqlstate in ("28000", "28P01")
            or ("role" in text and "does not exist" in text)
        ):
            return self._error(
                f"The database server at {where} refused the login of user '{user}': check the user name and "
                "password in DATABASE_URL.",
                AUTH,
            )
        if ("database" in text and "does not exist" in text) or sqlstate == "3D000":
            return self._error(
                f"The database '{self._parsed.database or '?'}' named in DATABASE_URL does not exist on {where}: create it, "
                "or fix the database name at the end of DATABASE_URL.",
                MISSING,
            )
        if "permission denied" in text or sqlstate == "42501":
            return self._error(
                f"The user '{user}' in DATABASE_URL lacks a permission on the kit's tables: grant it SELECT, "
                "INSERT, UPDATE and DELETE on them (and CREATE on the schema for the first start).",
                MISSING,
            )
        if looks_tls(text):
            return self._error(
                f"The TLS connection to the database at {where} failed ({first_line(orig, url_secrets(self.url))}): "
                "for CockroachDB put sslmode=verify-full and sslrootcert=<the cluster's CA file> in DATABASE_URL; "
                "for a server without TLS use sslmode=disable.",
                TLS,
            )
        if "timeout" in text or "timed out" in text:
            return self._error(
                f"The database at {where} did not answer in time: check the port in DATABASE_URL, that this "
                "host may reach it, and the server's load (DACA_DB_TIMEOUT sets how long the app waits).",
                PORT_CLOSED,
            )
        if "closed the connection" in text or "connection reset" in text or "broken pipe" in text:
            return self._error(
                f"The database at {where} dropped the connection: check that the server in DATABASE_URL is "
                "running; the next call reconnects."
            )
        return self._error(f"The database at {where} failed ({detail}): check DATABASE_URL.")

    @staticmethod
    def _error(sentence: str, problem: str = ERROR) -> BackendError:
        return BackendError(sentence, backend="database", problem=problem)


def _may_create_tables(conn: Connection) -> bool | None:
    """Whether the user may create tables in the current schema; None when the server cannot say."""
    try:
        return bool(conn.exec_driver_sql("SELECT has_schema_privilege(current_schema(), 'CREATE')").scalar())
    except Exception:  # noqa: BLE001 - not every server answers this; then we do not know
        return None
