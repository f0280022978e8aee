"""Helpers for the slow-failure tests: timed chat turns, recovery clocks and the table of measured bounds.

turn = timed_chat(client, "dora", "hello")    # .seconds, .response (None: no answer in time)
BOUNDS.answered("redis", "blackhole", turn)    # the slowest answer per backend and cut is kept
BOUNDS.get("redis", "blackhole").recovery = recovery(lambda: timed_chat(client, "dora", "hi").status == 200)
BOUNDS.write(path)                             # a Markdown table
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

# A client gives up after this long: an app that has not answered by then hangs, as far as a user knows.
PATIENCE = 20.0


@dataclass
class Turn:
    """One chat turn as a client saw it: how long it took and what came back (None: no answer)."""

    seconds: float
    response: httpx.Response | None

    @property
    def status(self) -> int | None:
        return self.response.status_code if self.response is not None else None

    @property
    def instance_id(self) -> str | None:
        if self.response is None or self.response.status_code != 200:
            return None
        return str(self.response.json()["metadata"]["instance_id"])

    @property
    def detail(self) -> str:
        if self.response is None:
            return ""
        body = self.response.json()
        return str(body.get("detail") or body.get("reply") or "")

    def describe(self) -> str:
        if self.response is None:
            return f"no answer within {PATIENCE:g} s"
        return f"{self.status}: {self.detail[:90]}"


def timed_chat(client: httpx.Client, user_id: str, text: str, *, patience: float = PATIENCE) -> Turn:
    """POST /chat/ and the seconds until its answer (or until the client gave up)."""
    start = time.monotonic()
    try:
        response = client.post("/chat/", json={"user_id": user_id, "text": text}, timeout=patience)
    except httpx.TimeoutException:
        return Turn(time.monotonic() - start, None)
    return Turn(time.monotonic() - start, response)


def recovery(check: Callable[[], object], *, timeout: float = 45.0, interval: float = 0.2) -> float:
    """Seconds until `check()` is truthy (the app recovered); AssertionError after `timeout`."""
    start = time.monotonic()
    while True:
        if check():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"the app did not recover within {timeout:g} s of the service's return")
        time.sleep(interval)


@dataclass
class Bound:
    backend: str
    mode: str
    seconds: float = math.nan  # the slowest answer while the service was cut
    answer: str = ""
    recovery: float = math.nan  # from the service's return until the app worked again


@dataclass
class Bounds:
    """What each backend x mode measured; written as a Markdown table for the README and the report."""

    rows: dict[tuple[str, str], Bound] = field(default_factory=dict)

    def get(self, backend: str, mode: str) -> Bound:
        return self.rows.setdefault((backend, mode), Bound(backend, mode))

    def answered(self, backend: str, mode: str, turn: Turn) -> None:
        bound = self.get(backend, mode)
        if turn.response is None or not turn.seconds <= bound.seconds:  # the slowest one counts
            bound.seconds, bound.answer = turn.seconds, turn.describe()

    def table(self) -> str:
        lines = [
            "| backend | cut | slowest answer (s) | answer | recovery (s) |",
            "|---|---|---|---|---|",
        ]
        for b in self.rows.values():
            answer = b.answer.replace("|", "/")
            lines.append(f"| {b.backend} | {b.mode} | {b.seconds:.2f} | {answer} | {b.recovery:.2f} |")
        return "\n".join(lines) + "\n"

    def write(self, path: Path) -> None:
        if self.rows:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(self.table(), encoding="utf-8")


BOUNDS = Bounds()
