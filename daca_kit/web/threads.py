"""Threads that run blocking calls (a chat turn: the database, the counters, the model) for the event loop.

    TURN_THREADS = Threads(40, "turn")
    result = await TURN_THREADS.run(kit.submit, user_id, text)

What `loop.run_in_executor` does, with a lighter hand-off: the call goes on a queue and its answer comes
back with `call_soon_threadsafe`, with no `concurrent.futures.Future` in between (each of which builds a
condition variable and a lock, and chains two futures through callbacks). On the hot path of a busy
worker that hand-off was a twentieth of the interpreter's time. Threads start on demand, up to `size`,
and stay; a call whose caller went away (its awaiting task cancelled) before a thread took it is skipped.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

T = TypeVar("T")

_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[], Any]]


class Threads:
    """A fixed ceiling of daemon threads serving blocking calls from any event loop."""

    def __init__(self, size: int, name: str) -> None:
        if size < 1:
            raise ValueError("Threads needs at least one thread")
        self.size = size
        self.name = name
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0

    @property
    def started(self) -> int:
        """Threads started so far (at most `size`)."""
        return self._threads

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)` in one of the threads; its result, or what it raised."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((loop, future, partial(fn, *args, **kwargs)))
        self._ensure_thread()
        return await future

    def _ensure_thread(self) -> None:
        """A thread for the job just queued: an idle one (reserved for it), else a new one up to `size`
        (else it waits for the first thread that frees up), as ThreadPoolExecutor decides."""
        with self._lock:
            if self._idle > 0:
                self._idle -= 1
                return
            if self._threads >= self.size:
                return
            self._threads += 1
            index = self._threads
        threading.Thread(target=self._serve, name=f"{self.name}_{index}", daemon=True).start()

    def _serve(self) -> None:
        while True:
            loop, future, call = self._jobs.get()
            how, value = _outcome(future, call)
            with self._lock:
                self._idle += 1  # before the caller hears back, so that its next call finds this thread
            if how is not None:
                _settle(loop, future, how, value)
            del loop, future, call, how, value  # nothing of a finished call stays alive while idle


def _outcome(future: asyncio.Future[Any], call: Callable[[], Any]) -> tuple[Callable[..., None] | None, Any]:
    if future.cancelled():  # the caller left before the call started: skip it
        return None, None
    try:
        return _succeed, call()
    except BaseException as exc:  # noqa: BLE001 - handed to the caller, as an executor does
        return _fail, exc


def _settle(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], how: Callable[..., None], value: Any
) -> None:
    try:
        loop.call_soon_threadsafe(how, future, value)
    except RuntimeError:
        pass  # the loop closed meanwhile (shutdown): nobody awaits the answer


def _succeed(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():
        future.set_result(result)


def _fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
