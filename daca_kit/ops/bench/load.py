"""The load generator: simulated users posting chat turns, latency percentiles, backend calls per turn.

    result = measure(app.base_url, app, label="embedded", users=8, turns=300, max_seconds=60,
                     user_prefix="e-u", text=lambda n: f"bench message {n}", progress=False)

Each user posts its next turn as soon as the last one answered (a closed loop), until `turns` were sent or
`max_seconds` passed, on a keep-alive connection of its own through the lean client in `http.py`, so that
the load takes little of the CPU it shares with the server (the phase reports the client's CPU per turn).
Backend calls come from the server's own `GET /usage` (each service's `calls`, and `turns_completed`), read
once the background work (outbox relay, event consumer) has settled; with more than one worker process they
are left out (each worker keeps its own, and /usage answers from one). The server's memory and CPU time
come from /proc when this process started it, summed over its workers.
With `counted` (see `sustained.py`), the phase also reports its sustained rate, backlog and event lag.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from daca_kit.ops.bench.http import LeanClient, LeanHTTPError
from daca_kit.ops.launcher import LocalApp

if TYPE_CHECKING:
    from daca_kit.ops.bench.sustained import Counted

SERVICE_KEYS = ("database", "counters", "events", "model")


def user_ids(prefix: str, users: int) -> list[str]:
    """The user ids a phase of `users` simulated users posts as."""
    return [f"{prefix}{u}" for u in range(users)]


def percentiles(samples_ms: list[float]) -> dict[str, float | None]:
    """p50/p95/p99/mean/max of latencies in milliseconds (nearest-rank percentiles)."""
    if not samples_ms:
        return {"p50": None, "p95": None, "p99": None, "mean": None, "max": None}
    ordered = sorted(samples_ms)

    def rank(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]

    return {
        "p50": round(rank(50), 2),
        "p95": round(rank(95), 2),
        "p99": round(rank(99), 2),
        "mean": round(statistics.fmean(ordered), 2),
        "max": round(ordered[-1], 2),
    }


@dataclass
class LoadResult:
    """What one load phase measured on the client side."""

    users: int
    requested: int
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    answered: dict[str, list[float]] = field(default_factory=dict)  # per user: when each 200 arrived

    def summary(self) -> dict[str, Any]:
        return {
            "users": self.users,
            "turns_requested": self.requested,
            "turns_ok": self.ok,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "turns_per_s": round(self.ok / self.seconds, 1) if self.seconds else None,
            # every request sent, failed ones included: a failing side must not look faster
            "attempted_per_s": round((self.ok + sum(self.errors.values())) / self.seconds, 1)
            if self.seconds
            else None,
            "latency_ms": percentiles(self.latencies_ms),
        }


async def _load(
    base_url: str,
    *,
    users: int,
    turns: int,
    max_seconds: float,
    user_prefix: str,
    text: Callable[[int], str],
    progress: bool,
    label: str,
    expect: int = 200,
    warm_up: bool = False,
) -> LoadResult:
    from tqdm.auto import tqdm

    result = LoadResult(users=users, requested=turns)
    next_turn = 0
    deadline = time.monotonic() + max_seconds
    bar = tqdm(total=turns, desc=label, unit="turn", disable=not progress, leave=False)
    async with LeanClient(base_url, timeout=60.0) as client:
        ids = user_ids(user_prefix, users)
        if warm_up:  # not measured: one turn per user opens the server's connections and pools
            await asyncio.gather(
                *(client.post_json("/chat/", {"user_id": u, "text": "warm-up"}) for u in ids)
            )

        async def user(u: int) -> None:
            nonlocal next_turn
            while next_turn < turns and time.monotonic() < deadline:
                n = next_turn
                next_turn += 1
                started = time.perf_counter()
                try:
                    status, _body = await client.post_json("/chat/", {"user_id": ids[u], "text": text(n)})
                    code = str(status)
                except LeanHTTPError as exc:
                    code = type(exc).__name__
                elapsed = (time.perf_counter() - started) * 1000
                if code == str(expect):
                    result.ok += 1
                    result.latencies_ms.append(elapsed)
                    result.answered.setdefault(ids[u], []).append(time.time())
                else:
                    result.errors[code] = result.errors.get(code, 0) + 1
                bar.update(1)

        started = time.perf_counter()
        await asyncio.gather(*(user(u) for u in range(users)))
        result.seconds = time.perf_counter() - started
    bar.close()
    return result


def run_load(base_url: str, **kwargs: Any) -> LoadResult:
    """One phase on its own event loop (uvloop's when installed, as the servers use it)."""
    try:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(_load(base_url, **kwargs))


def read_calls(client: httpx.Client) -> dict[str, float]:
    """The server's backend calls so far by service, and `turns` it completed, from its GET /usage."""
    body = client.get("/usage").raise_for_status().json()
    calls = {row["service"]: float(row["calls"]) for row in body["services"]}
    calls["turns"] = float(body["turns_completed"])
    return calls


def settled_calls(client: httpx.Client, *, timeout: float = 15.0) -> dict[str, float]:
    """The counters once background work (outbox relay, event consumer) has stopped moving them."""
    deadline = time.monotonic() + timeout
    last = read_calls(client)
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = read_calls(client)
        if now == last:
            return now
        last = now
    return last


def measure(
    server_url: str,
    server: LocalApp | None,
    *,
    label: str,
    counted: Counted | None = None,
    workers: int = 1,
    **load: Any,
) -> dict[str, Any]:
    """One load phase (after an unmeasured warm-up) with its backend calls per turn, CPU time and memory.

    `server` is the process this run started (None for an app started elsewhere: no /proc figures);
    `counted` follows the phase's counters (sustained rate, backlog, event lag); `workers` is the
    server's worker processes (above 1, GET /usage cannot give the calls per turn)."""
    per_process = workers == 1
    with httpx.Client(base_url=server_url, trust_env=False, timeout=30.0) as client, counted or nullcontext():
        run_load(server_url, label=label, warm_up=True, **load)
        if counted is not None:
            counted.settle()
        before = settled_calls(client) if per_process else {}
        cpu_before = server.status().get("cpu_ms") if server else None
        started = counted.started() if counted is not None else time.time()
        client_cpu = time.process_time()
        result = run_load(server_url, label=label, **load)
        client_cpu = time.process_time() - client_cpu
        if counted is not None:
            counted.stopped(started)
        sustained = (
            counted.report(seconds=result.seconds, answered=result.answered) if counted is not None else None
        )
        after = settled_calls(client) if per_process else {}
        cpu_after = server.status().get("cpu_ms") if server else None  # the deferred work included
    out = result.summary()
    out["workers"] = workers
    turns = max(1, result.ok)
    out["client_cpu_ms_per_turn"] = round(client_cpu * 1000 / turns, 2)
    if per_process:
        out["calls_per_turn"] = {
            k: round((after.get(k, 0) - before.get(k, 0)) / turns, 2) for k in SERVICE_KEYS
        }
        out["turns_completed_by_server"] = round(after["turns"] - before["turns"])
    else:
        out["calls_per_turn"] = None  # each worker counts its own calls
    if sustained is not None:
        out["sustained"] = sustained
    if server is not None:
        status = server.status()
        out["server"] = {
            "pid": server.pid,
            "processes": len(server.pids()),
            "rss_kib": status.get("VmRSS"),
            "peak_rss_kib": status.get("VmHWM"),
            "cpu_ms_per_turn": round((cpu_after - cpu_before) / turns, 2)
            if cpu_before is not None and cpu_after is not None
            else None,
        }
    return out
