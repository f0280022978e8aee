"""The bench's streaming scenario: time to first token, streaming (POST /chat/stream) vs not (POST /chat/).

    part = run_streaming(args, run_id, workdir)   # {"first_chunk_ms", "streaming", "whole_reply", ...}

The app runs on embedded defaults with the offline model writing word by word: `--model-delay` before the
reply begins (DACA_OFFLINE_DELAY), `--chunk-delay` before each word (DACA_OFFLINE_CHUNK_DELAY), so its
first word is ready after `model_delay + chunk_delay` seconds: the *first chunk*. C users each send their
next turn as soon as the last one ended. A streaming turn is timed at its first `token` event (time to
first token) and at `done`; a turn on POST /chat/ has its first word when the whole reply arrives, so its
latency is its time to first token. Target (issue: streaming replies): time to first token within the
first chunk + 20 ms at 32 users.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

import httpx

from daca_kit.ops.bench.load import percentiles
from daca_kit.ops.bench.scenarios import NO_LIMIT, kit_app

STREAMING = "streaming"
TTFT_MARGIN_MS = 20.0


async def _turns(
    base_url: str, *, stream: bool, users: int, turns: int, max_seconds: float, prefix: str, progress: bool
) -> dict[str, Any]:
    """A closed loop of `users` users; each turn's time to first token and to its end, in milliseconds."""
    from tqdm.auto import tqdm

    first_ms: list[float] = []
    done_ms: list[float] = []
    errors: dict[str, int] = {}
    next_turn = 0
    deadline = time.monotonic() + max_seconds
    label = "streaming" if stream else "whole reply"
    bar = tqdm(total=turns, desc=label, unit="turn", disable=not progress, leave=False)
    limits = httpx.Limits(max_connections=users, max_keepalive_connections=users)

    async def one(client: httpx.AsyncClient, user_id: str, text: str) -> tuple[float | None, float, str]:
        started = time.perf_counter()
        if not stream:
            response = await client.post("/chat/", json={"user_id": user_id, "text": text})
            elapsed = (time.perf_counter() - started) * 1000
            return elapsed, elapsed, str(response.status_code)
        first: float | None = None
        last_event = ""
        async with client.stream("POST", "/chat/stream", json={"user_id": user_id, "text": text}) as r:
            async for line in r.aiter_lines():
                if line.startswith("event: "):
                    last_event = line[len("event: ") :]
                    if last_event == "token" and first is None:
                        first = (time.perf_counter() - started) * 1000
        return first, (time.perf_counter() - started) * 1000, last_event or str(r.status_code)

    async with httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=60.0, limits=limits) as client:
        await asyncio.gather(*(one(client, f"{prefix}{u}", "warm-up") for u in range(users)))

        async def user(u: int) -> None:
            nonlocal next_turn
            while next_turn < turns and time.monotonic() < deadline:
                n = next_turn
                next_turn += 1
                try:
                    first, whole, outcome = await one(client, f"{prefix}{u}", f"bench message {n}")
                except httpx.HTTPError as exc:
                    first, whole, outcome = None, 0.0, type(exc).__name__
                if outcome in ("done", "200") and first is not None:
                    first_ms.append(first)
                    done_ms.append(whole)
                else:
                    errors[outcome] = errors.get(outcome, 0) + 1
                bar.update(1)

        started = time.perf_counter()
        await asyncio.gather(*(user(u) for u in range(users)))
        seconds = time.perf_counter() - started
    bar.close()
    return {
        "users": users,
        "turns_ok": len(first_ms),
        "errors": errors,
        "seconds": round(seconds, 3),
        "turns_per_s": round(len(first_ms) / seconds, 1) if seconds else None,
        "first_token_ms": percentiles(first_ms),
        "whole_reply_ms": percentiles(done_ms),
    }


def measure_streaming(base_url: str, args: argparse.Namespace, prefix: str) -> dict[str, Any]:
    """Both phases against a running app whose model paces itself as `args` says."""
    load: dict[str, Any] = {
        "users": args.users,
        "turns": args.turns,
        "max_seconds": args.max_seconds,
        "progress": not args.quiet,
    }
    return {
        "model_delay_s": args.model_delay,
        "chunk_delay_s": args.chunk_delay,
        "first_chunk_ms": round((args.model_delay + args.chunk_delay) * 1000, 2),
        "streaming": asyncio.run(_turns(base_url, stream=True, prefix=f"{prefix}s", **load)),
        "whole_reply": asyncio.run(_turns(base_url, stream=False, prefix=f"{prefix}w", **load)),
    }


def run_streaming(args: argparse.Namespace, run_id: str, workdir: Path) -> dict[str, Any]:
    """The streaming scenario on embedded defaults (its own SQLite file), the app started and stopped here."""
    env = {
        "DATABASE_URL": f"sqlite:///{workdir / 'streaming.db'}",
        "DACA_RATE_LIMIT": NO_LIMIT,
        "DACA_OFFLINE_CHUNK_DELAY": str(args.chunk_delay),
    }
    with kit_app(env, workdir, model_delay=args.model_delay) as app:
        return measure_streaming(app.base_url, args, f"t{run_id}-u")


def streaming_targets(scenarios: dict[str, Any]) -> list[dict[str, Any]]:
    """Time to first token against the first chunk + 20 ms (reported, not asserted)."""
    part = scenarios.get(STREAMING)
    if not part:
        return []
    bound = round(part["first_chunk_ms"] + TTFT_MARGIN_MS, 2)
    rows = []
    for q in ("p50", "p99"):
        value = part["streaming"]["first_token_ms"][q]
        rows.append(
            {
                "name": f"streaming, {part['streaming']['users']} users: time to first token {q} (ms)",
                "target": f"<= first chunk {part['first_chunk_ms']} + {TTFT_MARGIN_MS:g} = {bound}",
                "value": value,
                "met": value is not None and value <= bound,
            }
        )
    return rows


def streaming_table(scenarios: dict[str, Any]) -> str:
    """Time to first token and to the whole reply, streaming vs not, as text."""
    part = scenarios.get(STREAMING)
    if not part:
        return ""
    lines = [
        f"time to first token, first chunk after {part['first_chunk_ms']} ms "
        f"(model delay {part['model_delay_s']} s, {part['chunk_delay_s']} s per word):",
        f"{'':<22}{'users':>6}{'turns':>7}"
        f"{'first p50':>11}{'first p99':>11}{'whole p50':>11}{'whole p99':>11}",
    ]
    for key, name in (("streaming", "POST /chat/stream"), ("whole_reply", "POST /chat/")):
        phase = part[key]
        first, whole = phase["first_token_ms"], phase["whole_reply_ms"]
        lines.append(
            f"{name:<22}{phase['users']:>6}{phase['turns_ok']:>7}{first['p50'] or 0:>11.1f}"
            f"{first['p99'] or 0:>11.1f}{whole['p50'] or 0:>11.1f}{whole['p99'] or 0:>11.1f}"
        )
    return "\n".join(lines)
