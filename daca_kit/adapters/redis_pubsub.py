"""Wake-ups between the processes of one app on Redis pub/sub (`REDIS_URL`; Upstash over `rediss://` too).

    wakeups = RedisWakeUps.from_url(url, channel="daca:wake:1f2e...")   # one channel per app database
    wakeups.listen(on_change); wakeups.announce(instance_id, timer_iso)

One PUBLISH per saved workflow step (a review turn makes two: waiting, then ended; a turn that needs no
review makes none, as nothing is saved); Redis pushes it to
every subscribed process over a connection each keeps open, so a waiter elsewhere learns of a decision
within a round trip, and a pending review costs nothing while it waits. Nothing is stored: a process that
was disconnected re-reads what it may have missed when it reconnects (the listener gets (None, None)).
Each message names its sender, which ignores its own.
"""

from __future__ import annotations

import json
import logging
import queue
import socket
import threading
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.maint_notifications import MaintNotificationsConfig
from redis.retry import Retry

from daca_kit.adapters.redis import describe_redis_url
from daca_kit.core.clock import new_id
from daca_kit.core.models import Backend
from daca_kit.core.ports import WakeUp

log = logging.getLogger(__name__)


class RedisWakeUps:
    """`WakeUps` on one Redis pub/sub channel; a thread listens and reconnects with backoff."""

    name = "redis"

    def __init__(
        self,
        client: redis.Redis,
        channel: str,
        *,
        label: str = "redis://localhost:6379",
        backoff_max: float = 5.0,
    ) -> None:
        self.client = client
        self.channel = channel
        self.sender = new_id()
        self.backoff_max = backoff_max
        self.backend = Backend("redis", label, "Redis pub/sub")
        self.announced = 0
        self.subscribed = 0  # subscriptions confirmed so far (1 + reconnections)
        options = client.connection_pool.connection_kwargs
        # Each connection's handshake on RESP2: AUTH when there is a password, SELECT for a database but 0.
        self._handshake = int(bool(options.get("password"))) + int(bool(options.get("db")))
        self.received = 0
        self._healthy = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._callback: WakeUp | None = None
        # Announcements leave from their own thread, so a slow or unreachable Redis never holds up a turn.
        self._queue: queue.Queue[str] = queue.Queue(maxsize=1000)
        self._sender: threading.Thread | None = None

    @classmethod
    def from_url(cls, url: str, channel: str, *, timeout: float = 2.0) -> RedisWakeUps:
        # A dropped route is noticed by TCP keepalive probes (no Redis command: free tiers meter commands)
        # within about 30 s, and by a PING on the listening connection every 5 minutes.
        keepalive = {
            option: value
            for name, value in (("TCP_KEEPIDLE", 15), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 3))
            if (option := getattr(socket, name, None)) is not None
        }
        client = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            socket_keepalive=True,
            socket_keepalive_options=keepalive,
            health_check_interval=300,
            # No retry inside redis-py: the listening loop reconnects and re-subscribes itself.
            retry=Retry(NoBackoff(), 0),
            # The counters' lean handshake (RESP2: no HELLO, no CLIENT SETINFO or MAINT_NOTIFICATIONS):
            # every command is billed on Upstash.
            protocol=2,
            driver_info=None,
            maint_notifications_config=MaintNotificationsConfig(enabled=False),
            decode_responses=True,
            max_connections=8,
        )
        return cls(client, channel, label=describe_redis_url(url))

    @property
    def calls(self) -> int:
        """Redis commands the server ran for the wake-ups: each PUBLISH that it answered, and each
        subscription it confirmed, with its connection's handshake (the publishing connections' handshakes
        and the listening connection's PING every 5 minutes are left out). Counted on the answer, so a
        command lost with its connection is not."""
        return self.announced + self.subscribed * (1 + self._handshake)

    @property
    def healthy(self) -> bool:
        return self._healthy

    def listen(self, callback: WakeUp) -> None:
        self._callback = callback
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="wakeups", daemon=True)
        self._thread.start()
        self._sender = threading.Thread(target=self._send_loop, name="wakeups-send", daemon=True)
        self._sender.start()

    def announce(self, instance_id: str, timer: str | None) -> None:
        """Queues the announcement (never blocks); past 1,000 waiting, new ones are dropped (hints only)."""
        try:
            self._queue.put_nowait(json.dumps({"s": self.sender, "i": instance_id, "t": timer}))
        except queue.Full:
            log.debug("wake-up for %s dropped: Redis is not taking announcements", instance_id)

    def _send_loop(self) -> None:
        while not self._stop.is_set():
            try:
                message = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                self.client.publish(self.channel, message)
                self.announced += 1
            except (RedisError, OSError) as exc:  # a hint lost: waiters elsewhere re-check on their own
                log.debug("wake-up not announced: %s", exc)

    def close(self) -> None:
        self._stop.set()
        for thread in (self._thread, self._sender):
            if thread is not None:
                thread.join(timeout=3)
        self.client.close()

    # -- the listening thread -----------------------------------------------------------------------
    def _loop(self) -> None:
        delay = 0.2
        while not self._stop.is_set():
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.channel)
                pubsub.get_message(timeout=2.0)  # the subscription's confirmation: now we hear everything
                self._healthy, delay = True, 0.2
                self.subscribed += 1
                log.info("listening for wake-ups on Redis channel %s", self.channel)
                self._deliver(None, None)  # re-read whatever was announced while we were not listening
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self._handle(message)
            except (RedisError, OSError) as exc:
                if self._healthy:
                    log.warning(
                        "wake-ups from other processes paused (Redis: %s); waiters re-check slowly", exc
                    )
                self._healthy = False
                self._stop.wait(delay)
                delay = min(delay * 2, self.backoff_max)
            finally:
                try:
                    pubsub.close()
                except (RedisError, OSError):
                    pass
        self._healthy = False

    def _handle(self, message: dict[str, Any]) -> None:
        try:
            body = json.loads(message["data"])
        except (TypeError, ValueError):
            return
        if not isinstance(body, dict) or body.get("s") == self.sender or not isinstance(body.get("i"), str):
            return
        self.received += 1
        timer = body.get("t")
        self._deliver(body["i"], timer if isinstance(timer, str) else None)

    def _deliver(self, instance_id: str | None, timer: str | None) -> None:
        if self._callback is None:
            return
        try:
            self._callback(instance_id, timer)
        except Exception:  # noqa: BLE001 - a listener must not end the listening thread
            log.exception("wake-up listener failed")
