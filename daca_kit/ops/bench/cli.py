"""`daca-kit bench`: its options and the run that writes the report.

main(["--scenarios", "embedded", "--users", "8", "--turns", "300"])
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daca_kit.ops.bench.load import measure
from daca_kit.ops.bench.report import chart, table, targets
from daca_kit.ops.bench.scenarios import SCENARIOS, run_scenarios
from daca_kit.ops.bench.streaming import (
    STREAMING,
    run_streaming,
    streaming_table,
    streaming_targets,
)

ALL_SCENARIOS = (*SCENARIOS, STREAMING)

# Options that are not part of the measurement (or would put a password in the report).
_NOT_CONFIG = ("scenario_list", "worker_list", "postgres_admin", "database_url", "redis_url", "amqp_url")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="daca-kit bench",
        description="Benchmark the app on loopback next to a raw-stack reference (README: Benchmark).",
    )
    parser.add_argument(
        "--scenarios", default=",".join(ALL_SCENARIOS), help=f"comma list of {', '.join(ALL_SCENARIOS)}"
    )
    parser.add_argument("--url", help="drive an already running app instead (load only)")
    parser.add_argument(
        "--workers",
        default="1,2",
        help="comma list of the app's worker processes (WEB_CONCURRENCY) for the real scenario (default 1,2)",
    )
    parser.add_argument(
        "--raw-workers", type=int, default=2, help="worker processes of the raw reference (default 2)"
    )
    parser.add_argument("--users", type=int, default=32, help="concurrent simulated users (default 32)")
    parser.add_argument("--turns", type=int, default=2000, help="turns per load phase (default 2000)")
    parser.add_argument(
        "--single-turns", type=int, default=300, help="turns of the one-user phase (default 300)"
    )
    parser.add_argument(
        "--max-seconds", type=float, default=60.0, help="time bound of each phase (default 60)"
    )
    parser.add_argument(
        "--model-delay",
        type=float,
        default=0.0,
        help="seconds the offline model waits per reply (the app's DACA_OFFLINE_DELAY)",
    )
    parser.add_argument(
        "--chunk-delay",
        type=float,
        default=0.02,
        help="streaming scenario: seconds the offline model waits before each word "
        "(the app's DACA_OFFLINE_CHUNK_DELAY, default 0.02)",
    )
    parser.add_argument("--history-sizes", default="10,1000,100000", help="stored turns per history user")
    parser.add_argument("--history-turns", type=int, default=200, help="turns measured per history user")
    parser.add_argument("--history-backend", choices=("real", "embedded"), default="real")
    parser.add_argument("--reviews", type=int, default=100, help="reviews left pending (default 100)")
    parser.add_argument("--review-seconds", type=float, default=60.0, help="how long they wait (default 60)")
    parser.add_argument("--postgres-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--database-url", help="use this database for the real set (default: a scratch one)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/%2F")
    parser.add_argument(
        "--out", default="build/bench", help="folder for the JSON and PNG (default build/bench)"
    )
    parser.add_argument("--no-chart", action="store_true", help="skip the PNG")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    args.scenario_list = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(args.scenario_list) - set(ALL_SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    try:
        args.worker_list = sorted({int(w) for w in args.workers.split(",") if w.strip()})
    except ValueError:
        parser.error("--workers takes whole numbers separated by commas, e.g. 1,2")
    if not args.worker_list or min(args.worker_list) < 1 or args.raw_workers < 1:
        parser.error("--workers and --raw-workers must be at least 1")
    if (
        args.users < 1
        or args.turns < 0
        or args.max_seconds <= 0
        or min(args.model_delay, args.chunk_delay) < 0
    ):
        parser.error(
            "--users must be at least 1, --turns at least 0, --max-seconds positive "
            "and --model-delay and --chunk-delay not negative"
        )
    return args


def _unreachable(url: str) -> str | None:
    """Why `url` cannot be loaded (a sentence), or None when its GET /health answers 200."""
    import httpx

    try:
        answer = httpx.get(url.rstrip("/") + "/health", timeout=10.0, trust_env=False)
    except (httpx.HTTPError, ValueError) as exc:
        return f"cannot reach {url} ({type(exc).__name__}: {exc}); start the app (./run.sh) or pass its URL"
    if answer.status_code != 200:
        return f"{url}/health answered {answer.status_code}, not 200: is this the app?"
    return None


def main(argv: list[str] | None = None) -> int:
    """Runs the chosen scenarios (or loads `--url`), writes the JSON and chart, prints the table."""
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run_id = uuid.uuid4().hex[:6]
    report: dict[str, Any] = {
        "version": 1,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "config": {k: v for k, v in vars(args).items() if k not in _NOT_CONFIG},
        "notes": [
            "Loopback only; the kit runs with each --workers count of uvicorn worker processes and the "
            "raw reference with --raw-workers; the load generator runs on the same machine and shares "
            "its CPUs.",
            "sustained: turns answered and counted (the user's Redis counter covers the turn) by the time "
            "the load stopped, per second of load; event_lag_ms: from the turn's stored time (taken just "
            "before its INSERT) to the first poll of the counters that covered it (poll_interval_ms "
            "resolution), an upper bound of commit to counted; answer_to_counted_ms: from the client's "
            "answer, a lower bound; at_stop: outbox rows not yet published, messages ready in the "
            "counting queue and database sessions opened during the load; seconds_to_exact_counts: from "
            "the stop until every counter equals its user's stored turns.",
            "ratio_to_raw: the kit's rate over the raw reference's attempted rate (every request sent, "
            "failed ones included); errors are listed per side.",
            "calls_per_turn is null with more than one worker: each worker counts its own calls.",
            "calls_per_turn counts SQL statements (BEGIN/COMMIT excluded), Redis commands, AMQP publishes "
            "and model calls, including the outbox relay's and the analytics consumer's, as the server's "
            "GET /usage reports them.",
        ],
        "scenarios": {},
    }
    load = {
        "users": args.users,
        "turns": args.turns,
        "max_seconds": args.max_seconds,
        "progress": not args.quiet,
        "text": lambda n: f"bench message {n}",
    }
    single = {**load, "users": 1, "turns": args.single_turns}
    scenarios: dict[str, Any] = report["scenarios"]
    workdir = Path(tempfile.mkdtemp(prefix="daca-bench-"))
    if args.url:
        unreachable = _unreachable(args.url)
        if unreachable:
            print(f"daca-kit bench: {unreachable}", file=sys.stderr)
            return 2
    try:
        if args.url:
            scenarios["external"] = measure(
                args.url, None, label="app", user_prefix=f"bench-{run_id}-u", **load
            )
        else:
            run_scenarios(args, run_id, workdir, load, single, scenarios)
            if STREAMING in args.scenario_list:
                scenarios[STREAMING] = run_streaming(args, run_id, workdir)
    except KeyboardInterrupt:
        print("interrupted: writing what was measured", file=sys.stderr)
    finally:
        for log_file in workdir.glob("*-server.log"):  # the servers' output, for a look after the run
            shutil.copy(log_file, out / log_file.name)
        shutil.rmtree(workdir, ignore_errors=True)
    report["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    report["targets"] = targets(scenarios, args) + streaming_targets(scenarios)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    text = json.dumps(report, indent=2)
    (out / f"bench-{stamp}.json").write_text(text)
    (out / "bench.json").write_text(text)
    if not args.no_chart:
        chart(report, out / "bench.png")
    print(table(report))
    if STREAMING in scenarios:
        print(streaming_table(scenarios))
    if any("429" in (part.get("errors") or {}) for part in scenarios.values() if isinstance(part, dict)):
        print(
            "some turns were rate limited (429): start the app with a higher DACA_RATE_LIMIT, e.g. 100000/minute"
        )
    print(f"results: {out / 'bench.json'}" + ("" if args.no_chart else f", {out / 'bench.png'}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
