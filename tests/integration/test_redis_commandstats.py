"""The usage meter counts the Redis commands the server really ran, counted on the server's side.

Each test runs its own `redis-server` on a free loopback port (started here, stopped by its pid), so
`INFO commandstats` and `CONFIG RESETSTAT` see this test's commands and no one else's. The server counts
what the adapter's own bookkeeping cannot see: a script reloaded after NOSCRIPT, a command retried on a
fresh connection (with that connection's handshake), a health-check PING.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from daca_kit.bootstrap import bootstrap
from daca_kit.ops.launcher import free_port
from tests.conftest import unavailable

pytestmark = pytest.mark.integration

# The observer's own commands, left out of the server's count.
OBSERVER = {"info", "config|resetstat", "script|flush", "client|kill", "client|list", "echo", "monitor"}


@pytest.fixture
def private_redis(tmp_path) -> Iterator[tuple[str, int]]:
    """A redis-server of this test's own on loopback, without persistence; stopped by its pid."""
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server is not installed")
    port = free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"redis://127.0.0.1:{port}/0"
        probe = redis.Redis.from_url(url)
        deadline = time.monotonic() + 10
        while True:
            try:
                probe.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.05)
        probe.close()
        yield url, port
    finally:
        server.terminate()
        server.wait(10)


WAKEUP_COMMANDS = {"subscribe", "publish"}  # the wake-ups' own connection (adapters/redis_pubsub.py)


def counters_alone(kit: Any) -> int:
    """The usage meter's Redis commands less the wake-ups' (metered on their own, on the answer)."""
    return int(kit.backend_calls()["counters"]) - (kit.wakeups.calls if kit.wakeups is not None else 0)


def without_wakeups(ran: dict[str, int]) -> dict[str, int]:
    return {name: calls for name, calls in ran.items() if name not in WAKEUP_COMMANDS}


class ServerCount:
    """Commands clients sent to the server since `reset()`, counted by the server, less the observer's.

    INFO commandstats counts every command the server ran, the commands a Lua script runs included
    (`redis.call` inside EVALSHA); MONITOR shows those as coming from `lua`, so they are subtracted.
    """

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url, decode_responses=True, client_name="observer")
        self.client.ping()  # the observer's handshake happens now, before any reset
        self.seen: list[tuple[str, str]] = []  # (client type, command name) as MONITOR shows them
        # Kept referenced: a collected client closes its connections, the MONITOR one with them.
        self._watcher = redis.Redis.from_url(url, decode_responses=True, client_name="observer")
        self._monitor = self._watcher.monitor().__enter__()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        self._marks = 0
        self._since = self._mark()

    def _watch(self) -> None:
        try:
            while True:
                event = self._monitor.next_command()
                self.seen.append((event["client_type"], event["command"]))
        except (redis.RedisError, OSError, AttributeError, ValueError):
            return  # closed

    def _mark(self) -> int:
        """Sends a marker through the server, waits until MONITOR has shown it; its place in `seen`."""
        self._marks += 1
        marker = ("tcp", f"ECHO mark-{self._marks}")
        self.client.echo(f"mark-{self._marks}")
        deadline = time.monotonic() + 10
        while marker not in self.seen:
            assert time.monotonic() < deadline, "MONITOR did not show the marker"
            time.sleep(0.02)
        return self.seen.index(marker)

    def drop_connections(self) -> None:
        """Closes every client connection but the observer's, as a server restart or a proxy would."""
        for client in self.client.client_list():
            if client["name"] != "observer":
                self.client.client_kill_filter(_id=client["id"])

    def reset(self) -> None:
        self.client.config_resetstat()
        self._since = self._mark()

    def by_command(self) -> dict[str, int]:
        until = self._mark()
        stats = self.client.info("commandstats")
        ran = {key.removeprefix("cmdstat_"): int(value["calls"]) for key, value in stats.items()}
        for client_type, command in self.seen[self._since : until]:
            if client_type == "lua":  # run by a script, not sent by a client
                ran[command.split(" ", 1)[0].lower()] -= 1
        return {name: calls for name, calls in ran.items() if calls and name not in OBSERVER}

    def refused(self) -> dict[str, int]:
        """What the server refused to run since `reset()` (commandstats has no line for an unknown
        command): errors other than NOSCRIPT, and rejected calls."""
        errors = self.client.info("errorstats")
        found = {k: int(v["count"]) for k, v in errors.items() if k != "errorstat_NOSCRIPT"}
        stats = self.client.info("commandstats")
        found.update({k: int(v["rejected_calls"]) for k, v in stats.items() if int(v["rejected_calls"])})
        return found

    def close(self) -> None:
        self._monitor.connection.disconnect()
        self._watcher.close()
        self.client.close()


def test_the_usage_meter_counts_what_the_redis_server_ran(settings_factory, private_redis) -> None:
    url, _port = private_redis
    kit = bootstrap(settings_factory(redis_url=url, rate_limit="1000/minute")).start()
    server = ServerCount(url)
    try:
        assert kit.chat_sync("warm", "up").status == "completed"  # scripts loaded, a connection open
        assert kit.relay is not None and kit.relay.wait_idle(10)  # and the turn counted

        # Plain turns: the commands per turn, measured on the server.
        server.reset()
        meter = counters_alone(kit)
        for i in range(20):
            assert kit.chat_sync("meter", f"turn {i}").status == "completed"
        assert kit.relay.wait_idle(10)
        plain = server.by_command()
        print(f"server-side Redis commands in 20 plain turns: {plain}")
        assert plain.get("evalsha") == 40, plain  # per turn: the rate limit with the count, the increment
        assert server.refused() == {}
        assert counters_alone(kit) - meter == sum(plain.values()), plain  # no wake-up: nothing was saved

        # What the adapter's bookkeeping cannot see: the server forgot the scripts (NOSCRIPT, then
        # SCRIPT LOAD and the call again), the connections were dropped (a retry on a new connection,
        # with its handshake), and /health pinged.
        server.reset()
        meter = counters_alone(kit)
        server.client.script_flush()
        assert kit.chat_sync("meter", "after a script flush").status == "completed"
        server.drop_connections()
        assert kit.chat_sync("meter", "after the connections dropped").status == "completed"
        assert kit.health(max_age=0)["backends"]["counters"]["ok"]
        assert kit.relay.wait_idle(10)
        ran = without_wakeups(server.by_command())
        print(f"server-side Redis commands around a script flush and dropped connections: {ran}")
        assert counters_alone(kit) - meter == sum(ran.values()), ran
        assert ran.get("script|load", 0) >= 1 and ran.get("ping", 0) >= 1, ran
        assert server.refused() == {}
    finally:
        kit.close()
        server.close()
