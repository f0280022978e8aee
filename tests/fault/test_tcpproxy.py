"""The fault-injection proxy itself: each kind of cut fails a client the way the real failure would."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from tests.support.tcpproxy import TcpProxy


class Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        try:
            while data := self.request.recv(4096):
                self.request.sendall(data)
        except OSError:
            return  # the proxy reset the connection: that is what the tests do


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with TcpProxy("127.0.0.1", server.server_address[1]) as running:
            yield running
    finally:
        server.shutdown()
        server.server_close()


def connect(proxy: TcpProxy) -> socket.socket:
    return socket.create_connection(("127.0.0.1", proxy.port), timeout=1.0)


def echo(sock: socket.socket, data: bytes = b"ping") -> bytes:
    sock.sendall(data)
    return sock.recv(4096)


def forwarding(proxy: TcpProxy) -> socket.socket:
    """A new connection through the proxy, checked to reach the echo server."""
    sock = connect(proxy)
    assert echo(sock) == b"ping"
    return sock


def dropped(sock: socket.socket) -> bool:
    """True when the connection was closed or reset under the client (it sees EOF or an error)."""
    try:
        return echo(sock) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


def test_refuse_closes_the_port_and_drops_live_connections(proxy: TcpProxy) -> None:
    live = forwarding(proxy)
    proxy.cut("refuse")
    with pytest.raises(ConnectionRefusedError):
        connect(proxy)
    assert dropped(live)
    proxy.restore()
    forwarding(proxy).close()


def test_blackhole_accepts_and_never_answers_live_or_new(proxy: TcpProxy) -> None:
    live = forwarding(proxy)
    proxy.cut("blackhole")
    with pytest.raises(TimeoutError):
        echo(live)  # a live connection goes silent, it is not reset
    new = connect(proxy)  # the connect succeeds...
    with pytest.raises(TimeoutError):
        echo(new)  # ...and nothing ever answers
    proxy.restore()
    for held in (live, new):  # held connections are dropped on restore: the client must reconnect
        held.settimeout(2.0)
        assert dropped(held)
    with connect(proxy) as again:
        assert echo(again) == b"ping"


def test_reset_drops_each_connection_at_its_next_request(proxy: TcpProxy) -> None:
    live = forwarding(proxy)
    proxy.cut("reset")
    time.sleep(0.3)
    live.sendall(b"mid-request")  # the request goes out; the answer never comes: the connection is reset
    with pytest.raises(ConnectionResetError):
        live.recv(4096)
    new = connect(proxy)  # a new connection opens, then is reset by its first request
    new.sendall(b"hello")
    with pytest.raises(ConnectionResetError):
        new.recv(4096)
    proxy.restore()
    forwarding(proxy).close()
