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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import StaticPool
from sqlmodel import SQLModel

from daca_kit.adapters.sql.deadline import Outage, Watchdog
from daca_kit.adapters.sql.diagnose import database_error, diagnose, round_trip
from daca_kit.core.models import Backend, RoundTrip
from daca_kit.errors import ERROR, PORT_CLOSED, BackendError, ConfigError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 3.0  # seconds; DACA_DB_TIMEOUT
# What a CREATE answers when another process created the same table, type or index a moment before:
# unique_violation (pg_type's name), duplicate_table, duplicate_object.
_CREATED_MEANWHILE = {"23505", "42P07", "42710"}

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


@contextmanager
def _autocommit(raw: Any, driver_error: type[Exception]) -> Iterator[None]:
    """A pooled connection in autocommit for the block; then back to transactions, or out of the pool when
    it cannot take them (a statement still in flight: the deadline cut it)."""
    dbapi = raw.dbapi_connection
    dbapi.autocommit = True
    try:
        yield
    finally:
        if not dbapi.closed:
            try:
                dbapi.autocommit = False
            except driver_error as exc:
                raw.invalidate(exc)


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
            self.parsed = make_url(normalize_url(url))
        except Exception as exc:  # noqa: BLE001 - any parse failure is the same finding
            raise ConfigError("DATABASE_URL is not a valid database URL: check its form.") from exc
        self.host, self.port = server_address(self.parsed)
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
        full, parsed = normalize_url(self.url), self.parsed
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
            # 40 at most, as before, all kept: an overflow connection closed on its return and opened again
            # at the next burst cost a connect and a server backend each (0.23 per turn at 32 clients).
            pool_size=40,
            max_overflow=0,
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
        """Creates the tables that do not exist yet. Processes starting together on a fresh database (workers,
        replicas) may race: the loser's CREATE fails on the winner's new table, so it looks again, and finds it."""
        for attempt in range(3):
            try:
                SQLModel.metadata.create_all(self.engine)
                return
            except SQLAlchemyError as exc:
                if (
                    attempt == 2
                    or getattr(getattr(exc, "orig", None), "sqlstate", None) not in _CREATED_MEANWHILE
                ):
                    raise self.explain(exc, "create the tables") from exc
                time.sleep(0.1 * (attempt + 1))

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

    def direct(
        self, work: Callable[[Any], Any], *, what: str, statements: int = 1, transaction: bool = False
    ) -> Any:
        """Runs `work(cursor)` on a pooled driver connection, for the hot paths (a chat turn, the relay).

        No SQL compiling: `work`'s SQL is the driver's own (psycopg's `%s` placeholders). In autocommit
        (the default) each statement is its own transaction, with no BEGIN or COMMIT round trips, so
        whatever must commit together is one statement; `transaction=True` runs `work` in one transaction
        instead, committed when it returns. Postgres and CockroachDB only (`direct_sql`); the deadline,
        the outage rule, the retries of `run` (CockroachDB conflicts, one dropped connection) and the error
        sentences are the same. `statements` is what `work` sends, for the meter.
        """
        self.outage.check(what)
        driver_error = self.engine.dialect.loaded_dbapi.Error
        attempts = 0
        while True:
            attempts += 1
            guard = None
            try:
                raw = self.engine.raw_connection()
            except SQLAlchemyError as exc:
                raise self._failed(exc, what) from exc
            cursor = None
            try:
                dbapi: Any = raw.dbapi_connection
                mode = dbapi.transaction() if transaction else _autocommit(raw, driver_error)
                with self._deadline_of(raw.info) as guard, mode:
                    cursor = dbapi.cursor()
                    self.count_statements(statements)
                    result = work(cursor)
                self.outage.end()
                return result
            except driver_error as exc:
                expired = guard is not None and guard.expired
                lost = self.engine.dialect.is_disconnect(exc, dbapi, cursor) or expired
                if lost:
                    raw.invalidate(exc)
                wrapped = DBAPIError.instance(
                    None, None, exc, driver_error, connection_invalidated=lost, dialect=self.engine.dialect
                )
                sqlstate = getattr(exc, "sqlstate", None)
                if not expired and ((sqlstate == "40001" and attempts < 8) or (lost and attempts < 2)):
                    time.sleep(min(0.01 * 2**attempts, 0.5))
                    continue
                raise self._failed(wrapped, what, expired=expired) from exc
            finally:
                if cursor is not None and not cursor.closed:
                    cursor.close()
                raw.close()  # back to the pool (an invalidated one is dropped)

    def count_statements(self, statements: int) -> None:
        """For the meter: statements sent by `direct`'s work (it counts the ones it was told of)."""
        with self._count_lock:
            self.statements += statements

    @property
    def direct_sql(self) -> bool:
        """Whether `direct` serves this database (a psycopg server, not SQLite)."""
        return self.kind != "sqlite"

    # -- a database that stops answering ---------------------------------------------------------
    def _deadline(self, conn: Connection) -> Any:
        return self._watchdog.guard(conn.connection.info, self.timeout)

    def _deadline_of(self, info: dict[str, Any]) -> Any:
        return self._watchdog.guard(info, self.timeout)

    def _failed(self, exc: SQLAlchemyError, what: str, *, expired: bool = False) -> BackendError:
        """The error for a failed call; an unreachable database also makes calls fail fast a while."""
        if expired:
            found = self._error(
                f"The database at {self.host}:{self.port} did not answer within {self.timeout:g} s "
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

    # -- doctor's round trip and the failures' sentences (diagnose.py) -------------------------------
    def check(self) -> RoundTrip:
        """Opens the server's port, runs one query, and finds the kit's tables or whether they may be created."""
        return round_trip(self)

    def _diagnose(self, exc: BaseException) -> BackendError:
        return diagnose(self, exc)

    @staticmethod
    def _error(sentence: str, problem: str = ERROR) -> BackendError:
        return database_error(sentence, problem)
