"""The database deadline's watchdog on plain loopback sockets: it cuts a call that outlives its deadline,
and never a call that finished, nor a socket that merely reuses a guarded descriptor's number."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from daca_kit.adapters.sql.deadline import Watchdog


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.create_server(("127.0.0.1", 0))
    yield server
    server.close()


def dial(listener: socket.socket) -> tuple[socket.socket, socket.socket]:
    """A connected pair: the client end, and the server end (which never answers unless told to)."""
    client = socket.create_connection(listener.getsockname()[:2])
    server, _ = listener.accept()
    return client, server


def remembered(sock: socket.socket) -> dict[str, Any]:
    info: dict[str, Any] = {}
    Watchdog.remember(SimpleNamespace(pgconn=SimpleNamespace(socket=sock.fileno())), info)
    return info


@pytest.fixture
def watchdog() -> Iterator[Watchdog]:
    running = Watchdog()
    yield running
    running.close()


def test_a_call_that_outlives_its_deadline_is_cut(listener: socket.socket, watchdog: Watchdog) -> None:
    client, server = dial(listener)
    start = time.monotonic()
    with watchdog.guard(remembered(client), 0.3) as guard:
        assert client.recv(16) == b""  # blocked on a server that never answers, until the cut
    assert 0.25 < time.monotonic() - start < 2.0
    assert guard is not None and guard.expired
    client.close()
    server.close()


def test_a_call_that_finished_in_time_is_never_cut(listener: socket.socket, watchdog: Watchdog) -> None:
    client, server = dial(listener)
    with watchdog.guard(remembered(client), 0.2) as guard:
        server.sendall(b"answer")
        assert client.recv(16) == b"answer"
    time.sleep(0.4)
    assert guard is not None and not guard.expired
    server.sendall(b"still open")
    assert client.recv(16) == b"still open"
    client.close()
    server.close()


def test_a_reused_descriptor_is_not_cut(listener: socket.socket, watchdog: Watchdog) -> None:
    old, old_server = dial(listener)
    info = remembered(old)
    old.close()
    new, new_server = dial(listener)  # usually gets the same descriptor number back
    with watchdog.guard(info, 0.1) as guard:
        time.sleep(0.4)
    assert guard is not None and not guard.expired
    new_server.sendall(b"alive")
    assert new.recv(16) == b"alive"
    for sock in (new, new_server, old_server):
        sock.close()


def test_a_connection_without_a_known_socket_is_not_guarded(watchdog: Watchdog) -> None:
    info: dict[str, Any] = {}
    Watchdog.remember(object(), info)  # not a psycopg connection
    with watchdog.guard(info, 0.01) as guard:
        assert guard is None


def test_a_unix_socket_connection_is_cut_too(watchdog: Watchdog) -> None:
    client, server = socket.socketpair()  # Postgres on a local socket path connects like this
    with watchdog.guard(remembered(client), 0.2) as guard:
        assert client.recv(16) == b""
    assert guard is not None and guard.expired
    client.close()
    server.close()
