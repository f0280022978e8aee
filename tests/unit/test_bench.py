"""`daca-kit bench` end to end on a tiny embedded run (a few turns, seconds): the JSON report's shape and
the chart. No timed assertions: figures depend on the machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daca_kit.ops.bench import main
from daca_kit.ops.bench.cli import parse_args
from daca_kit.ops.bench.load import percentiles
from daca_kit.ops.bench.report import table, targets
from daca_kit.ops.bench.scenarios import ratio_to_raw
from daca_kit.ops.bench.sustained import summarize, turn_lags


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

    def sustained(p99: float) -> dict[str, object]:
        return {"sustained_turns_per_s": 90.0, "event_lag_ms": {"p50": 40.0, "p99": p99}}

    scenarios = {
        "real": {
            "1": {
                "turns_per_s": 95.0,
                "ratio_to_raw": {"sustained": 0.82, "answered": 0.86},
                "sustained": sustained(300.0),
                "calls_per_turn": {"database": 5.0, "counters": 3.0, "events": 1.0, "model": 1.0},
                "single_user": {"latency_ms": {"p50": 7.5}},
            },
            "2": {
                "turns_per_s": 120.0,
                "ratio_to_raw": {"sustained": 0.95, "answered": 1.1},
                "sustained": sustained(1200.0),
                "calls_per_turn": None,
            },
            "3": {"workers": 3, "error": "The app exited with code 3 before answering /health."},
        },
        "reviews": {"calls_per_second_per_review": 0.0},
        "history": {"p50_ratio_largest_to_smallest": 1.6},
    }
    met = {t["name"]: t["met"] for t in targets(scenarios, Args())}  # type: ignore[arg-type]
    assert met == {
        "2 worker(s), sustained turns/s: kit vs raw stack": False,
        "1 worker(s), sustained turns/s: kit vs raw stack": True,
        "1 worker(s): event lag p99, commit to counted": True,
        "2 worker(s): event lag p99, commit to counted": False,
        "real, 1 worker: one user p50 (model excluded)": False,
        "Redis commands per turn": False,
        "AMQP publishes per turn": True,
        "backend calls per second per pending review": True,
        "p50 at the largest history vs the smallest": False,
    }


def test_a_turn_counted_after_the_load_stopped_is_not_sustained() -> None:
    # alice's turns were stored at 10.0 (warm-up, before the phase), 11.0 and 12.0 and answered at 11.1
    # and 12.2; her counter read 1 at 10.1, 2 at 11.3 and 3 only at 13.0, after the load stopped at 12.5.
    # bob's one turn was never counted, and his answers are unknown (one answer too many: an error).
    turns = {"alice": [10.0, 11.0, 12.0], "bob": [11.5]}
    seen = {"alice": [(0, 9.0), (1, 10.1), (2, 11.3), (3, 13.0)], "bob": [(0, 9.0)]}
    answered = {"alice": [11.1, 12.2], "bob": [11.6, 11.9]}

    lags = turn_lags(turns, seen, since=10.5, answered=answered)
    figures = summarize(lags, stopped_at=12.5, seconds=2.0)

    assert sorted((t.stored, t.answered, t.counted) for t in lags) == [
        (11.0, 11.1, 11.3),
        (11.5, None, None),
        (12.0, 12.2, 13.0),
    ]  # the warm-up turn is left out
    assert figures["turns_stored"] == 3
    assert figures["counted_by_stop"] == 1 and figures["not_counted_at_stop"] == 2
    assert figures["never_counted"] == 1
    assert figures["sustained_turns_per_s"] == 0.5  # one turn answered and counted in 2 s of load
    assert figures["event_lag_ms"]["p50"] == 300.0 and figures["event_lag_ms"]["max"] == 1000.0
    assert figures["answer_to_counted_ms"]["p50"] == 200.0 and figures["answer_to_counted_ms"]["max"] == 800.0


def test_the_reference_errors_do_not_make_the_kit_look_faster() -> None:
    kit = {"turns_per_s": 90.0, "sustained": {"sustained_turns_per_s": 80.0}}
    raw = {"turns_per_s": 50.0, "attempted_per_s": 100.0, "errors": {"500": 500}}

    assert ratio_to_raw(kit, raw) == {"sustained": 0.8, "answered": 0.9}  # over 100/s sent, not 50/s ok
    assert ratio_to_raw(kit, None) == {"sustained": None, "answered": None}


def test_the_table_shows_sustained_figures_and_a_worker_count_that_did_not_run() -> None:
    lat = {"p50": 5.0, "p95": 9.0, "p99": 12.0, "mean": 6.0, "max": 20.0}
    held = {
        "sustained_turns_per_s": 88.0,
        "not_counted_at_stop": 4,
        "seconds_to_exact_counts": 0.05,
        "at_stop": {"outbox_rows": 3, "queue_ready": 0, "new_db_sessions": 0},
        "event_lag_ms": {"p50": 40.0, "p99": 310.0},
        "answer_to_counted_ms": {"p50": 30.0, "p99": 290.0},
    }
    part = {"users": 32, "turns_ok": 900, "turns_per_s": 90.0, "latency_ms": lat, "errors": {"503": 2}}
    report = {
        "scenarios": {
            "real": {
                "1": {
                    **part,
                    "workers": 1,
                    "sustained": held,
                    "ratio_to_raw": {"sustained": 0.8, "answered": 0.82},
                },
                "2": {"workers": 2, "error": "The app exited with code 3 before answering /health."},
            },
            "raw": {**part, "workers": 2, "errors": {}, "sustained": held},
        },
        "targets": [],
    }

    text = table(report)

    assert "real, 2w                  did not run: The app exited with code 3" in text
    assert "503x2" in text
    line = next(row for row in text.splitlines() if row.startswith("real, 1w") and "88.0" in row)
    assert line.split()[2:] == [
        "90.0",
        "88.0",
        "0.80",
        "0.82",
        "4",
        "3",
        "0",
        "0.05",
        "40",
        "310",
        "290",
        "0",
    ]


@pytest.mark.parametrize("workers", ["0", "1,x", ","])
def test_a_bad_worker_count_is_refused_with_a_sentence(
    workers: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--workers", workers])
    assert "--workers" in capsys.readouterr().err


def test_worker_counts_are_read_in_order() -> None:
    args = parse_args(["--workers", "2,1,2", "--raw-workers", "3"])
    assert (args.worker_list, args.raw_workers) == ([1, 2], 3)


def test_an_unreachable_url_is_one_sentence_and_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nobody listens on it once closed
    code = main(["--url", f"http://127.0.0.1:{port}", "--users", "1", "--turns", "1", "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert f"cannot reach http://127.0.0.1:{port}" in err and "Traceback" not in err
    assert not (tmp_path / "bench.json").exists()
