"""`daca-kit bench` on the real local Postgres, Redis and RabbitMQ, a few turns: the kit with its worker
count and the raw reference with two workers in the same run, each with its sustained figures (answered
and counted, backlog at the stop, event lag). No timed assertions: figures depend on the machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daca_kit.ops.bench import main

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_real_bench_counts_every_answered_turn_on_both_sides(
    tmp_path: Path, pg_url: str, redis_url: str, amqp_url: str
) -> None:
    code = main(
        [
            "--scenarios", "real,raw",
            "--workers", "1",
            "--raw-workers", "2",
            "--users", "2",
            "--turns", "12",
            "--single-turns", "3",
            "--max-seconds", "20",
            "--database-url", pg_url,
            "--redis-url", redis_url,
            "--amqp-url", amqp_url,
            "--out", str(tmp_path),
            "--quiet",
            "--no-chart",
        ]
    )  # fmt: skip

    assert code == 0
    report = json.loads((tmp_path / "bench.json").read_text())
    kit, raw = report["scenarios"]["real"]["1"], report["scenarios"]["raw"]
    for side in (kit, raw, kit["single_user"], raw["single_user"]):
        held = side["sustained"]
        assert side["errors"] == {}
        assert held["turns_stored"] == side["turns_ok"]  # every answered turn was stored once...
        assert held["never_counted"] == 0 and held["overcounted"] == 0  # ...and counted once
        assert held["seconds_to_exact_counts"] is not None
        assert set(held["at_stop"]) == {"outbox_rows", "queue_ready", "new_db_sessions"}
        assert held["at_stop"]["new_db_sessions"] is not None  # Postgres 14+ counts its sessions
        assert held["event_lag_ms"]["p50"] is not None and held["answer_to_counted_ms"]["p50"] is not None
    assert kit["turns_ok"] == 12 and kit["single_user"]["turns_ok"] == 3
    assert kit["sustained"]["at_stop"]["outbox_rows"] is not None  # the kit has an outbox, the raw side none
    assert raw["sustained"]["at_stop"]["outbox_rows"] is None
    assert (kit["workers"], kit["server"]["processes"]) == (1, 1)
    assert raw["workers"] == 2 and raw["server"]["processes"] >= 3  # uvicorn's parent and its two workers
    assert raw["calls_per_turn"] is None and kit["calls_per_turn"]["events"] == 1.0
    assert kit["ratio_to_raw"]["sustained"] is not None
    names = [t["name"] for t in report["targets"]]
    assert "1 worker(s), sustained turns/s: kit vs raw stack" in names
    assert "1 worker(s): event lag p99, commit to counted" in names
