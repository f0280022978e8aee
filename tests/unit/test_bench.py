"""`daca-kit bench` end to end on a tiny embedded run (a few turns, seconds): the JSON report's shape and
the chart. No timed assertions: figures depend on the machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daca_kit.ops.bench import main
from daca_kit.ops.bench.load import percentiles
from daca_kit.ops.bench.report import targets


def test_percentiles_are_nearest_rank() -> None:
    samples = [float(n) for n in range(1, 101)]
    assert percentiles(samples) == {"p50": 50.0, "p95": 95.0, "p99": 99.0, "mean": 50.5, "max": 100.0}
    assert percentiles([]) == {"p50": None, "p95": None, "p99": None, "mean": None, "max": None}


@pytest.mark.slow  # starts a server process and draws the chart
def test_tiny_embedded_bench_writes_its_report_and_chart(tmp_path: Path) -> None:
    code = main(
        [
            "--scenarios", "embedded",
            "--users", "2",
            "--turns", "8",
            "--single-turns", "4",
            "--max-seconds", "30",
            "--out", str(tmp_path),
            "--quiet",
        ]
    )  # fmt: skip

    assert code == 0
    report = json.loads((tmp_path / "bench.json").read_text())
    assert {
        "version",
        "started_at",
        "finished_at",
        "machine",
        "config",
        "notes",
        "scenarios",
        "targets",
    } <= set(report)
    embedded = report["scenarios"]["embedded"]
    for part in (embedded, embedded["single_user"]):
        assert {
            "users",
            "turns_requested",
            "turns_ok",
            "errors",
            "seconds",
            "turns_per_s",
            "latency_ms",
        } <= set(part)
        assert set(part["latency_ms"]) == {"p50", "p95", "p99", "mean", "max"}
        assert set(part["calls_per_turn"]) == {"database", "counters", "events", "model"}
        assert {"pid", "rss_kib", "peak_rss_kib", "cpu_ms_per_turn"} <= set(part["server"])
    assert embedded["turns_ok"] == 8 and embedded["errors"] == {}
    assert embedded["single_user"]["users"] == 1 and embedded["single_user"]["turns_ok"] == 4
    assert embedded["calls_per_turn"]["model"] == 1.0  # one offline model call per turn, warm-up excluded
    assert embedded["calls_per_turn"]["counters"] == 0.0  # embedded counters are SQL statements
    assert embedded["server"]["rss_kib"] > 0
    assert [t["name"] for t in report["targets"]] == ["embedded: one user p50 (model excluded)"]
    assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(list(tmp_path.glob("bench-*.json"))) == 1


def test_targets_report_what_was_measured() -> None:
    class Args:
        model_delay = 0.0

    scenarios = {
        "real": {
            "turns_per_s": 70.0,
            "ratio_to_raw": 0.7,
            "calls_per_turn": {"database": 5.0, "counters": 3.0, "events": 1.0, "model": 1.0},
            "single_user": {"latency_ms": {"p50": 9.5}},
        },
        "reviews": {"calls_per_second_per_review": 0.0},
        "history": {"p50_ratio_largest_to_smallest": 1.6},
    }
    met = {t["name"]: t["met"] for t in targets(scenarios, Args())}  # type: ignore[arg-type]
    assert met == {
        "real services, concurrent users: kit vs raw stack": True,
        "real: one user p50 (model excluded)": True,
        "Redis commands per turn": False,
        "AMQP publishes per turn": True,
        "backend calls per second per pending review": True,
        "p50 at the largest history vs the smallest": False,
    }
