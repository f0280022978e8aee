"""A controllable TCP proxy on loopback, for injecting network faults between the kit and a service.

    with TcpProxy("127.0.0.1", 5672) as proxy:
        url = proxy.wrap_url("amqp://guest:guest@127.0.0.1:5672/")   # -> 127.0.0.1:<proxy.port>
        proxy.cut("blackhole")   # nothing answers any more, on live and new connections
        proxy.restore()          # forwards again, on the same port

The proxy listens on 127.0.0.1 on a free port and forwards each accepted connection to the target,
one thread per connection pair. The three kinds of cut are the three ways a service fails:
- `cut("refuse")` (default): the service is down. The port is closed (a connect fails with
  ECONNREFUSED) and every live connection is reset at once.
- `cut("blackhole")`: the route is dropped, or the server froze (the usual cloud failure). A connect
  succeeds and nothing ever answers; live connections stop forwarding in both directions and stay open,
  so a client learns of the failure only from its own timeout.
- `cut("reset")`: the service crashes under the request. Every connection, live or new, is reset (RST,
  SO_LINGER 0) as soon as either side sends: a request in flight is dropped, unanswered, mid-request.
`restore()` forwards new connections again and resets the connections a blackhole held (their request
state is unknown: the client must reconnect). The real services are never touched.
"""

from __future__ import annotations

import selectors
import socket
import struct
import threading
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

Mode = Literal["refuse", "reset", "blackhole"]
MODES: tuple[Mode, ...] = ("refuse", "blackhole", "reset")


def _reset(sock: socket.socket) -> None:
    """Closes with an RST (SO_LINGER 0), so the peer sees the connection drop at once."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def _kill(sock: socket.socket) -> None:
    """Drops a forwarded connection from another thread: its pipe thread wakes up and closes it."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class TcpProxy:
    """Forwards 127.0.0.1:<port> to (target_host, target_port) until cut; see the module docstring."""

    def __init__(self, target_host: str, target_port: int, *, connect_timeout: float = 2.0) -> None:
        self.target = (target_host, target_port)
        self.connect_timeout = connect_timeout
        self.port = 0
        self._listener: socket.socket | None = self._listen(0)
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._accepting = threading.Lock()  # held by the accept thread while it waits in accept()
        self._live: set[socket.socket] = set()
        self._held: set[socket.socket] = set()
        self._mode: Mode | None = None  # None: forwarding
        self._cuts = 0  # how many cuts so far: a pipe held by a blackhole ends when the count moves on
        self._restored = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._accepter: threading.Thread | None = None
        self.accepted = 0  # connections forwarded
        self.dropped = 0  # connections reset or held while cut, and live ones cut

    @staticmethod
    def _listen(port: int) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(128)
        listener.settimeout(0.05)
        return listener

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """http://127.0.0.1:<port>, for an HTTP service behind the proxy."""
        return f"http://{self.address}"

    def wrap_url(self, url: str) -> str:
        """`url` (redis://, amqp://, postgresql://, http://...) with host and port replaced by the proxy's."""
        parts = urlsplit(url)
        auth = parts.netloc.rpartition("@")[0]
        return urlunsplit(parts._replace(netloc=f"{auth}@{self.address}" if auth else self.address))

    @property
    def is_cut(self) -> bool:
        return self._mode is not None

    # -- control -------------------------------------------------------------------------------
    def start(self) -> TcpProxy:
        if self._accepter is None:
            self._accepter = threading.Thread(
                target=self._accept_loop, name=f"tcpproxy-{self.port}", daemon=True
            )
            self._accepter.start()
        return self

    def cut(self, mode: Mode = "refuse") -> None:
        """Fails the service in one of three ways; see the module docstring."""
        if mode not in MODES:
            raise ValueError(f"unknown cut {mode!r}: use one of {', '.join(MODES)}")
        with self._lock:
            self._mode = mode
            self._cuts += 1
            closing = self._listener if mode == "refuse" else None
            if closing is not None:
                self._listener = None
        if closing is not None:
            # Close the port for real before dropping anyone: the accept thread must have left accept(),
            # or the kernel would still complete handshakes that are reset a moment later.
            with self._accepting:
                closing.close()
        if mode != "refuse":
            return  # live connections stall (blackhole) or are reset when next used (reset)
        with self._lock:
            live, self._live = self._live, set()
            self.dropped += len(live) // 2
        for sock in live:
            _kill(sock)

    def restore(self) -> None:
        """Forwards new connections again on the same port (connections held by a blackhole are reset)."""
        with self._lock:
            if self._listener is None and not self._stop.is_set():
                self._listener = self._listen(self.port)
            self._mode = None
            held, self._held = self._held, set()
            self._restored.notify_all()
        for sock in held:
            _reset(sock)

    def close(self) -> None:
        self._stop.set()
        self.cut()
        with self._lock:
            self._restored.notify_all()
        if self._accepter is not None:
            self._accepter.join(timeout=2)
        with self._lock:
            held, self._held = self._held, set()
        for sock in held:
            _reset(sock)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- forwarding ----------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            with self._accepting:
                listener = self._listener
                if listener is None:
                    client = None
                else:
                    try:
                        client, _ = listener.accept()
                    except (TimeoutError, OSError):
                        client = None  # no connection yet, or the listener was closed by cut("refuse")
            if client is None:
                if listener is None:
                    self._stop.wait(0.02)
                continue
            client.settimeout(None)
            with self._lock:
                mode = self._mode
                if mode is not None:
                    self.dropped += 1
                if mode == "blackhole":
                    self._held.add(client)
                    continue
            target = self._reset_when_used if mode is not None else self._pipe
            threading.Thread(target=target, args=(client,), daemon=True).start()

    def _reset_when_used(self, client: socket.socket) -> None:
        """A new connection while reset: it is reset as soon as its first request arrives."""
        with selectors.DefaultSelector() as selector:
            selector.register(client, selectors.EVENT_READ)
            while not self._stop.is_set() and not selector.select(timeout=0.2):
                pass
        _reset(client)

    def _pipe(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=self.connect_timeout)
        except OSError:
            _reset(client)
            return
        upstream.settimeout(None)
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            if self._mode is not None:  # cut while we were connecting
                _reset(client)
                _reset(upstream)
                return
            self._live.update((client, upstream))
            self.accepted += 1
        peer = {client: upstream, upstream: client}
        selector = selectors.DefaultSelector()
        try:
            for sock in peer:
                selector.register(sock, selectors.EVENT_READ)
            while not self._stop.is_set():
                if self._mode == "blackhole":
                    self._hold()
                    return  # restored: the held connection is reset
                for key, _ in selector.select(timeout=0.2):
                    if self._mode is not None:
                        break  # a blackhole reads nothing more; a reset drops this request (below)
                    src: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = src.recv(65536)
                    if not data:
                        return
                    peer[src].sendall(data)
                else:
                    with self._lock:
                        if client not in self._live:
                            return
                    continue
                if self._mode == "reset":
                    with self._lock:
                        self.dropped += 1
                    return  # reset mid-request, the request unanswered
        except (OSError, ValueError):
            return  # reset by cut() or by a peer
        finally:
            selector.close()
            with self._lock:
                self._live.discard(client)
                self._live.discard(upstream)
            for sock in (client, upstream):
                _reset(sock)

    def _hold(self) -> None:
        """Blocks a pipe, reading and sending nothing, until the blackhole is lifted or the proxy closes."""
        with self._lock:
            self.dropped += 1
            cut = self._cuts
            while self._mode == "blackhole" and self._cuts == cut and not self._stop.is_set():
                self._restored.wait(0.5)
