"""The turn threads (`daca_kit.web.threads.Threads`): answers and errors reach the awaiting caller, calls
run in parallel up to the ceiling and no further, idle threads are reused, and a call whose caller left
before it started is skipped."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from daca_kit.web.threads import Threads


def test_a_call_runs_in_a_named_thread_and_its_answer_or_error_comes_back() -> None:
    threads = Threads(2, "turn")

    def where(x: int, *, y: int) -> tuple[str, int]:
        return threading.current_thread().name, x + y

    def fails() -> None:
        raise LookupError("no such turn")

    async def run() -> None:
        name, total = await threads.run(where, 1, y=2)
        assert name.startswith("turn_") and name != threading.current_thread().name
        assert total == 3
        with pytest.raises(LookupError, match="no such turn"):
            await threads.run(fails)

    asyncio.run(run())


def test_calls_run_in_parallel_up_to_the_ceiling_and_threads_are_reused() -> None:
    threads = Threads(4, "turn")
    lock = threading.Lock()
    running = peak = 0

    def blocking() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.15)
        with lock:
            running -= 1

    async def run() -> None:
        started = time.monotonic()
        await asyncio.gather(*(threads.run(blocking) for _ in range(8)))
        took = time.monotonic() - started
        assert peak == 4  # four at once, never more
        assert 0.28 < took < 3  # two rounds of four, not eight one after the other
        for _ in range(5):
            await threads.run(blocking)
        assert threads.started == 4  # idle threads took the later calls

    asyncio.run(run())


def test_one_call_at_a_time_leaves_one_thread() -> None:
    threads = Threads(40, "turn")

    async def run() -> None:
        for n in range(20):
            assert await threads.run(lambda n=n: n * 2) == n * 2
        assert threads.started == 1

    asyncio.run(run())


def test_a_call_whose_caller_left_before_it_started_is_skipped() -> None:
    threads = Threads(1, "turn")
    release = threading.Event()
    ran: list[str] = []

    def first() -> None:
        release.wait(5)
        ran.append("first")

    def second() -> None:
        ran.append("second")

    async def run() -> None:
        busy = asyncio.ensure_future(threads.run(first))
        await asyncio.sleep(0.05)  # the only thread is in `first`
        queued = asyncio.ensure_future(threads.run(second))
        await asyncio.sleep(0.05)
        queued.cancel()  # the caller goes away while its call waits for a thread
        release.set()
        await busy
        assert await threads.run(lambda: "after") == "after"
        with pytest.raises(asyncio.CancelledError):
            await queued

    asyncio.run(run())
    assert ran == ["first"]


def test_a_ceiling_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Threads(0, "turn")
