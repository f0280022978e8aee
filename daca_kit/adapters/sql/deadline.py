"""A deadline on each database call, and failing fast while the database is out of reach.

    watchdog = Watchdog()
    watchdog.remember(dbapi_connection, record.info)          # once, when the pool opens a connection
    with watchdog.guard(record.info, seconds=3.0) as guard:   # around each transaction
        ...
    guard.expired   # True when the deadline cut the connection

psycopg waits for the server's answer with no limit of its own. A connection whose route was dropped, or
whose server froze, never answers; TCP keepalives and the server's `statement_timeout` cannot end that
wait (the server never sees the statement), so one such call would hold a chat turn, and a pool slot,
for good. When a deadline passes, the watchdog shuts the connection's socket down: the waiting call fails
at once as a lost connection, and SQLAlchemy drops the connection from its pool.

One thread serves every guard. A guard's socket is identified by its file descriptor and its local and
peer addresses, taken when the connection opened; the watchdog cuts it only if the descriptor still
names that socket, so a descriptor closed and reused in the meantime is never touched.

`Outage` makes the calls after such a failure fail at once for a moment, so a chat turn that makes
several calls waits for one deadline, not one per call.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from daca_kit.errors import BackendError

log = logging.getLogger(__name__)

SOCKET_KEY = "daca_socket"  # in the pool's per-connection `info`: (fd, local address, peer address)


def _duplicate(fd: int) -> socket.socket:
    """A socket object on a duplicate of `fd`, family and type read from the descriptor (IPv4, IPv6, Unix).

    Shutting it down shuts the shared socket down; closing it closes only the duplicate."""
    dup = os.dup(fd)
    try:
        return socket.socket(fileno=dup)
    except OSError:
        os.close(dup)
        raise


def _identity(fd: int) -> tuple[Any, Any] | None:
    """(local address, peer address) of the socket behind `fd`, or None when it is not a connected socket."""
    try:
        with _duplicate(fd) as sock:
            return sock.getsockname(), sock.getpeername()
    except OSError:
        return None


def _cut(fd: int, identity: tuple[Any, Any]) -> bool:
    """Shuts down the socket behind `fd` if it is still the one identified; True if it was cut."""
    try:
        with _duplicate(fd) as sock:
            if (sock.getsockname(), sock.getpeername()) != identity:
                return False
            sock.shutdown(socket.SHUT_RDWR)
            return True
    except OSError:
        return False


class Guard:
    """One call's deadline; `expired` tells the caller that the watchdog cut its connection."""

    __slots__ = ("deadline", "done", "expired", "fd", "identity")

    def __init__(self, deadline: float, fd: int, identity: tuple[Any, Any]) -> None:
        self.deadline = deadline
        self.fd = fd
        self.identity = identity
        self.done = False
        self.expired = False


class Watchdog:
    """Cuts the connection of any guarded call that outlives its deadline; see the module docstring."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._heap: list[tuple[float, int, Guard]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False

    @staticmethod
    def remember(dbapi_connection: Any, info: dict[str, Any]) -> None:
        """Records which socket a new psycopg connection uses (its `pgconn.socket` descriptor)."""
        try:
            fd = int(dbapi_connection.pgconn.socket)
        except Exception:  # noqa: BLE001 - not psycopg, or not connected: such a connection is not guarded
            return
        identity = _identity(fd)
        if identity is not None:
            info[SOCKET_KEY] = (fd, identity)

    @contextmanager
    def guard(self, info: dict[str, Any], seconds: float) -> Iterator[Guard | None]:
        """Cuts the connection whose pool `info` this is if the block outlives `seconds`."""
        known = info.get(SOCKET_KEY)
        if known is None or self._closed:
            yield None
            return
        guard = Guard(time.monotonic() + seconds, known[0], known[1])
        with self._cv:
            heapq.heappush(self._heap, (guard.deadline, next(self._order), guard))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="db-deadlines", daemon=True)
                self._thread.start()
            elif self._heap[0][2] is guard:
                self._cv.notify()
        try:
            yield guard
        finally:
            with self._cv:  # under the lock: the watchdog cuts only while the call is still inside
                guard.done = True

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify()

    def _run(self) -> None:
        with self._cv:
            while not self._closed:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cv.wait()
                    continue
                deadline, _, guard = self._heap[0]
                left = deadline - time.monotonic()
                if left > 0:
                    self._cv.wait(left)
                    continue
                heapq.heappop(self._heap)
                guard.expired = _cut(guard.fd, guard.identity)
                if guard.expired:
                    log.warning("a database call passed its deadline: its connection was cut")


class Outage:
    """The database found out of reach: for `cooldown` seconds calls fail at once with the same error.

    outage = Outage(cooldown=1.0)
    outage.check()        # raises the error that began the outage, while it lasts
    outage.begin(error)   # after a deadline, a refused or a dropped connection
    outage.end()          # after a call that worked: the next failure starts afresh
    """

    def __init__(self, cooldown: float) -> None:
        self.cooldown = cooldown
        self._until = 0.0
        self._error: BackendError | None = None

    def check(self, what: str) -> None:
        error = self._error
        if error is not None and time.monotonic() < self._until:
            raise BackendError(
                f"The database could not {what}: {error}", backend="database", problem=error.problem
            )

    def begin(self, error: BackendError) -> None:
        self._error = error
        self._until = time.monotonic() + self.cooldown

    def end(self) -> None:
        self._until = 0.0
