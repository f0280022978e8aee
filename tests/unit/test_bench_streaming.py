"""The bench's streaming scenario on a tiny embedded run (a few turns, seconds): time to first token,
streaming vs not, and its target in the report. No timed assertions: figures depend on the machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daca_kit.ops.bench import main
from daca_kit.ops.bench.streaming import streaming_targets


@pytest.mark.slow  # starts a server process
def test_tiny_streaming_bench_reports_time_to_first_token(tmp_path: Path, capsys) -> None:
    code = main(
        [
            "--scenarios", "streaming",
            "--users", "2",
            "--turns", "6",
            "--max-seconds", "30",
            "--chunk-delay", "0.01",
            "--out", str(tmp_path),
            "--no-chart",
            "--quiet",
        ]
    )  # fmt: skip

    assert code == 0
    part = json.loads((tmp_path / "bench.json").read_text())["scenarios"]["streaming"]
    assert part["first_chunk_ms"] == 10.0 and part["chunk_delay_s"] == 0.01
    for phase in ("streaming", "whole_reply"):
        assert part[phase]["turns_ok"] == 6 and part[phase]["errors"] == {}
        assert set(part[phase]["first_token_ms"]) == {"p50", "p95", "p99", "mean", "max"}
    # A streaming turn's first token comes before its end; without streaming they are the same moment.
    assert part["streaming"]["first_token_ms"]["p50"] < part["streaming"]["whole_reply_ms"]["p50"]
    assert part["whole_reply"]["first_token_ms"] == part["whole_reply"]["whole_reply_ms"]
    printed = capsys.readouterr().out
    assert "POST /chat/stream" in printed and "time to first token p99" in printed


def test_the_target_is_the_first_chunk_plus_20_ms() -> None:
    def scenario(p50: float, p99: float) -> dict[str, object]:
        first = {"p50": p50, "p99": p99}
        return {"streaming": {"first_chunk_ms": 50.0, "streaming": {"users": 32, "first_token_ms": first}}}

    assert [t["met"] for t in streaming_targets(scenario(60.0, 75.0))] == [True, False]
    assert streaming_targets(scenario(60.0, 70.0))[1]["target"] == "<= first chunk 50.0 + 20 = 70.0"
    assert streaming_targets({}) == []
