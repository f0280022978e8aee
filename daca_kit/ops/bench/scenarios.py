"""The bench's scenarios. Each starts its servers through the launcher on 127.0.0.1 and stops them:

- embedded: the defaults (SQLite, embedded counters and events), C concurrent users, then one user;
- real:     Postgres + Redis + RabbitMQ (a scratch database and vhost, dropped afterwards), likewise, once
            per `--workers` count (WEB_CONCURRENCY of the app, through the launcher), with the
            sustained figures of `sustained.py`; a worker count the app refuses is reported as such;
- raw:      the raw-stack reference (`raw.py`, `--raw-workers` processes) on the same services, with the
            same figures; the kit's sustained turns/s is reported as a ratio of its rate;
- history:  one user with 10, 1,000 and 100,000 stored turns (seeded in the database directly);
- reviews:  100 reviews pending for --review-seconds: backend calls made while they wait.

The kit runs as users run it, `daca-kit serve --api-only`, with the offline model (DACA_OFFLINE_DELAY
set from --model-delay), a rate limit that never refuses and DACA_CHAT_WAIT=0.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from daca_kit.ops.bench.load import SERVICE_KEYS, measure, read_calls, settled_calls, user_ids
from daca_kit.ops.bench.sustained import Counted, CountSource
from daca_kit.ops.launcher import AppStartError, LocalApp

SCENARIOS = ("embedded", "real", "raw", "history", "reviews")
NO_LIMIT = "100000000/minute"  # the limiter runs (and costs what it costs) but never refuses
RAW_COMMAND = (sys.executable, "-m", "daca_kit.ops.bench.raw")
STARTUP_SECONDS = 90.0


@contextmanager
def kit_app(
    settings: dict[str, str], workdir: Path, *, model_delay: float, workers: int = 1
) -> Iterator[LocalApp]:
    """The app (`daca-kit serve --api-only`) on `settings`, its output appended to kit-server.log."""
    chosen = {**settings, "DACA_CHAT_WAIT": "0", "DACA_OFFLINE_DELAY": str(model_delay)}
    log_path = workdir / "kit-server.log"
    with LocalApp(
        chosen, workdir=workdir, log_path=log_path, startup_timeout=STARTUP_SECONDS, workers=workers
    ) as app:
        yield app


@contextmanager
def raw_app(settings: dict[str, str], workdir: Path, *, workers: int = 1) -> Iterator[LocalApp]:
    """The raw-stack reference server on the same services, its output in raw-server.log."""
    log_path = workdir / "raw-server.log"
    with LocalApp(
        settings,
        workdir=workdir,
        command=RAW_COMMAND,
        log_path=log_path,
        startup_timeout=STARTUP_SECONDS,
        workers=workers,
    ) as app:
        yield app


def sustained_phases(
    app: LocalApp,
    source: CountSource,
    *,
    label: str,
    prefix: str,
    workers: int,
    load: dict[str, Any],
    single: dict[str, Any],
) -> dict[str, Any]:
    """The concurrent phase and the one-user phase of one server, each with its sustained figures."""
    result = measure(
        app.base_url,
        app,
        label=label,
        user_prefix=f"{prefix}-u",
        workers=workers,
        counted=Counted(source, user_ids(f"{prefix}-u", load["users"])),
        **load,
    )
    result["single_user"] = measure(
        app.base_url,
        app,
        label=f"{label}, one user",
        user_prefix=f"{prefix}-solo",
        workers=workers,
        counted=Counted(source, user_ids(f"{prefix}-solo", 1)),
        **single,
    )
    return result


def ratio_to_raw(kit: dict[str, Any], raw: dict[str, Any] | None) -> dict[str, float | None]:
    """The kit's rates over the raw reference's: sustained (answered and counted) and answered alone.

    The reference's rate counts every request it was sent, failed ones included, so its errors never
    make the kit look better; the kit's counts only turns answered (and, for `sustained`, counted)."""
    if not raw or not raw.get("attempted_per_s"):
        return {"sustained": None, "answered": None}
    reference = raw["attempted_per_s"]
    sustained = (kit.get("sustained") or {}).get("sustained_turns_per_s")
    return {
        "sustained": round(sustained / reference, 3) if sustained is not None else None,
        "answered": round((kit["turns_per_s"] or 0) / reference, 3),
    }


def run_scenarios(
    args: argparse.Namespace,
    run_id: str,
    workdir: Path,
    load: dict[str, Any],
    single: dict[str, Any],
    scenarios: dict[str, Any],
) -> None:
    """Runs the scenarios in `args.scenario_list`, adding each one's results to `scenarios`."""
    wanted = args.scenario_list
    delay = args.model_delay
    if "embedded" in wanted or ("history" in wanted and args.history_backend == "embedded"):
        env = {"DATABASE_URL": f"sqlite:///{workdir / 'embedded.db'}", "DACA_RATE_LIMIT": NO_LIMIT}
        with kit_app(env, workdir, model_delay=delay) as app:
            if "embedded" in wanted:
                result = measure(app.base_url, app, label="embedded", user_prefix=f"e{run_id}-u", **load)
                result["single_user"] = measure(
                    app.base_url, app, label="embedded, one user", user_prefix=f"e{run_id}-solo", **single
                )
                scenarios["embedded"] = result
            if "history" in wanted and args.history_backend == "embedded":
                scenarios["history"] = history(args, app, env["DATABASE_URL"], run_id, "embedded")
    needs_real = {"real", "raw", "reviews"} & set(wanted) or (
        "history" in wanted and args.history_backend == "real"
    )
    if not needs_real:
        return
    with scratch_vhost(args.amqp_url) as amqp_url, _database(args) as database_url:
        env = {
            "DATABASE_URL": database_url,
            "REDIS_URL": args.redis_url,
            "AMQP_URL": amqp_url,
            "DACA_RATE_LIMIT": NO_LIMIT,
        }
        if "raw" in wanted:
            with raw_app(env, workdir, workers=args.raw_workers) as app:
                scenarios["raw"] = sustained_phases(
                    app,
                    CountSource(database_url, args.redis_url, amqp_url, side="raw"),
                    label=f"raw reference, {args.raw_workers} worker(s)",
                    prefix=f"r{run_id}",
                    workers=args.raw_workers,
                    load=load,
                    single=single,
                )
        others = {"history", "reviews"} & set(wanted)
        counts = args.worker_list if "real" in wanted else []
        if others and 1 not in counts:
            counts = [*counts, 1]
        for workers in counts:
            try:
                with kit_app(env, workdir, model_delay=delay, workers=workers) as app:
                    if "real" in wanted and workers in args.worker_list:
                        real = sustained_phases(
                            app,
                            CountSource(database_url, args.redis_url, amqp_url, side="kit"),
                            label=f"real services, {workers} worker(s)",
                            prefix=f"k{run_id}w{workers}",
                            workers=workers,
                            load=load,
                            single=single,
                        )
                        real["ratio_to_raw"] = ratio_to_raw(real, scenarios.get("raw"))
                        scenarios.setdefault("real", {})[str(workers)] = real
                    if workers == 1:
                        if "history" in wanted and args.history_backend == "real":
                            scenarios["history"] = history(args, app, database_url, run_id, "real")
                        if "reviews" in wanted:
                            scenarios["reviews"] = pending_reviews(args, app, run_id)
            except AppStartError as exc:  # e.g. a WEB_CONCURRENCY this version cannot serve
                why, _, tail = str(exc).partition(" Its output ends with:")
                last = [line.strip() for line in tail.splitlines() if line.strip()][-1:]
                scenarios.setdefault("real", {})[str(workers)] = {
                    "workers": workers,
                    "error": why + (f" Its last line: {last[0]}" if last else ""),
                }


@contextmanager
def _database(args: argparse.Namespace) -> Iterator[str]:
    if args.database_url:
        yield args.database_url
        return
    with scratch_postgres(args.postgres_admin) as url:
        yield url


def history(
    args: argparse.Namespace, app: LocalApp, database_url: str, run_id: str, backend: str
) -> dict[str, Any]:
    """Turn latency for one user with 10, 1,000, 100,000 stored turns (the history query is bounded)."""
    sizes = [int(s) for s in args.history_sizes.split(",") if s.strip()]
    result: dict[str, Any] = {"backend": backend, "sizes": {}}
    for size in sizes:
        user = f"h{run_id}-{size}"
        started = time.perf_counter()
        seed_history(database_url, user, size)
        seeded = time.perf_counter() - started
        phase = measure(
            app.base_url,
            app,
            label=f"history {size:,}",
            users=1,
            turns=args.history_turns,
            max_seconds=args.max_seconds,
            progress=not args.quiet,
            text=lambda n: f"history message {n}",
            user_prefix=user,
        )
        phase["seed_seconds"] = round(seeded, 2)
        result["sizes"][str(size)] = phase
    if len(sizes) >= 2:
        low, high = result["sizes"][str(min(sizes))], result["sizes"][str(max(sizes))]
        if low["latency_ms"]["p50"] and high["latency_ms"]["p50"]:
            result["p50_ratio_largest_to_smallest"] = round(
                high["latency_ms"]["p50"] / low["latency_ms"]["p50"], 3
            )
    return result


def pending_reviews(args: argparse.Namespace, app: LocalApp, run_id: str) -> dict[str, Any]:
    """Leaves `--reviews` turns pending for `--review-seconds` and counts the backend calls meanwhile."""
    from tqdm.auto import tqdm

    with httpx.Client(base_url=app.base_url, trust_env=False, timeout=30.0) as client:
        held = 0
        for n in range(args.reviews):
            response = client.post(
                "/chat/?wait=0", json={"user_id": f"v{run_id}-{n % 10}", "text": f"urgent case {n}"}
            )
            held += response.status_code == 202
        before = settled_calls(client)
        cpu_before = app.status().get("cpu_ms", 0)
        waited = 0.0
        bar = tqdm(
            total=round(args.review_seconds),
            desc="reviews pending",
            unit="s",
            disable=args.quiet,
            leave=False,
        )
        started = time.monotonic()
        while waited < args.review_seconds:
            time.sleep(min(1.0, args.review_seconds - waited))
            waited = time.monotonic() - started
            bar.n = min(round(waited), bar.total)
            bar.refresh()
        bar.close()
        after = read_calls(client)  # no settling: anything the waiting costs must show up here
        cpu_after = app.status().get("cpu_ms", 0)
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in SERVICE_KEYS}
    total = sum(delta.values())
    return {
        "pending": held,
        "seconds": round(waited, 1),
        "calls_while_waiting": delta,
        "calls_per_second_per_review": round(total / waited / max(1, held), 6) if waited else None,
        "server_cpu_ms_while_waiting": cpu_after - cpu_before,
    }


# -- scratch services ---------------------------------------------------------------------------
@contextmanager
def scratch_postgres(admin_url: str) -> Iterator[str]:
    """A new database on the local Postgres for this run, dropped afterwards."""
    import psycopg

    name = f"daca_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin_url)
    try:
        yield urlunsplit(parts._replace(path="/" + name))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def scratch_vhost(amqp_url: str) -> Iterator[str]:
    """A private RabbitMQ vhost (via rabbitmqctl, when it is on this machine), deleted afterwards."""
    ctl = shutil.which("rabbitmqctl")
    vhost = f"daca-bench-{uuid.uuid4().hex[:8]}"
    parts = urlsplit(amqp_url)
    user = parts.username or "guest"
    if ctl is None or subprocess.run([ctl, "-q", "add_vhost", vhost], capture_output=True).returncode != 0:
        yield amqp_url
        return
    subprocess.run([ctl, "-q", "set_permissions", "-p", vhost, user, ".*", ".*", ".*"], capture_output=True)
    try:
        yield urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))
    finally:
        subprocess.run([ctl, "-q", "delete_vhost", vhost], capture_output=True)


def seed_history(database_url: str, user_id: str, turns: int) -> None:
    """Stores `turns` finished turns for `user_id` directly in the database (no events)."""
    from daca_kit.adapters.sql import open_stores

    stores = open_stores(database_url)
    store = stores.conversations
    try:
        stores.database.create_all()
        now = datetime.now(UTC)
        chunk = 5000
        for start in range(0, turns, chunk):
            rows = [
                (f"seeded message {i}", f"seeded reply {i}") for i in range(start, min(turns, start + chunk))
            ]
            store.bulk_insert_turns(user_id, rows, now)  # type: ignore[attr-defined]
    finally:
        stores.database.close()
