"""The bench's report: the targets (reported, not asserted), the text table and the chart.

print(table(report)); chart(report, Path("build/bench/bench.png"))
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from daca_kit.ops.bench.load import SERVICE_KEYS

CALL_NAMES = {
    "database": "SQL statements",
    "counters": "Redis commands",
    "events": "event publishes",
    "model": "model calls",
}


def targets(scenarios: dict[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    """The issue's targets, with the measured value and whether it was met (reported, not asserted)."""
    rows: list[dict[str, Any]] = []

    def add(name: str, target: str, value: Any, met: bool | None) -> None:
        rows.append({"name": name, "target": target, "value": value, "met": met})

    real = scenarios.get("real")
    if real and "ratio_to_raw" in real:
        add(
            "real services, concurrent users: kit vs raw stack",
            ">= 0.7",
            real["ratio_to_raw"],
            real["ratio_to_raw"] >= 0.7,
        )
    for key in ("real", "embedded"):
        part = scenarios.get(key)
        if part and part.get("single_user"):
            p50 = part["single_user"]["latency_ms"]["p50"]
            p50_model_excluded = None if p50 is None else round(p50 - args.model_delay * 1000, 2)
            add(
                f"{key}: one user p50 (model excluded)",
                "<= 10 ms",
                p50_model_excluded,
                p50_model_excluded is not None and p50_model_excluded <= 10,
            )
    if real:
        calls = real["calls_per_turn"]
        add("Redis commands per turn", "<= 2", calls["counters"], calls["counters"] <= 2)
        add("AMQP publishes per turn", "1", calls["events"], abs(calls["events"] - 1) < 0.05)
    reviews = scenarios.get("reviews")
    if reviews:
        value = reviews["calls_per_second_per_review"]
        add("backend calls per second per pending review", "0", value, value == 0)
    hist = scenarios.get("history")
    if hist and "p50_ratio_largest_to_smallest" in hist:
        value = hist["p50_ratio_largest_to_smallest"]
        add("p50 at the largest history vs the smallest", "<= 1.5", value, value <= 1.5)
    return rows


def table(report: dict[str, Any]) -> str:
    scenarios = report["scenarios"]
    lines = [
        "",
        f"{'scenario':<22}{'users':>6}{'turns':>7}{'turns/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
        f"{'SQL':>6}{'Redis':>6}{'AMQP':>6}{'model':>6}{'RSS MiB':>8}{'CPU ms':>8}",
    ]

    def row(name: str, part: dict[str, Any]) -> None:
        lat, calls = part["latency_ms"], part.get("calls_per_turn", {})
        server = part.get("server") or {}
        rss = server.get("rss_kib")
        lines.append(
            f"{name:<22}{part['users']:>6}{part['turns_ok']:>7}{part['turns_per_s'] or 0:>9.1f}"
            f"{lat['p50'] or 0:>9.2f}{lat['p95'] or 0:>9.2f}{lat['p99'] or 0:>9.2f}"
            f"{calls.get('database', 0):>6.2f}{calls.get('counters', 0):>6.2f}{calls.get('events', 0):>6.2f}"
            f"{calls.get('model', 0):>6.2f}{(rss or 0) / 1024:>8.1f}{server.get('cpu_ms_per_turn') or 0:>8.2f}"
        )

    for key in ("embedded", "real", "raw", "external"):
        part = scenarios.get(key)
        if part:
            row(key, part)
            if part.get("single_user"):
                row(f"{key}, one user", part["single_user"])
    hist = scenarios.get("history")
    if hist:
        for size, part in hist["sizes"].items():
            row(f"history {int(size):,} ({hist['backend']})", part)
    if scenarios.get("real", {}).get("ratio_to_raw") is not None:
        lines.append(f"kit / raw stack (real services, turns/s): {scenarios['real']['ratio_to_raw']:.2f}")
    reviews = scenarios.get("reviews")
    if reviews:
        lines.append(
            f"{reviews['pending']} reviews pending for {reviews['seconds']} s: calls {reviews['calls_while_waiting']}, "
            f"{reviews['calls_per_second_per_review']} calls/s per review"
        )
    lines.append("")
    for t in report.get("targets", []):
        mark = "met" if t["met"] else "MISSED"
        lines.append(f"  [{mark:>6}] {t['name']}: {t['value']} (target {t['target']})")
    return "\n".join(lines)


def chart(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = report["scenarios"]
    loads = [(k, scenarios[k]) for k in ("embedded", "real", "raw", "external") if k in scenarios]
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    ax = axes[0][0]
    ax.bar([k for k, _ in loads], [p["turns_per_s"] or 0 for _, p in loads], color="#4c72b0")
    ax.set_title("throughput (turns/s)")
    ax = axes[0][1]
    width = 0.25
    for i, q in enumerate(("p50", "p95", "p99")):
        ax.bar(
            [j + i * width for j in range(len(loads))],
            [p["latency_ms"][q] or 0 for _, p in loads],
            width,
            label=q,
        )
    ax.set_xticks([j + width for j in range(len(loads))], [k for k, _ in loads])
    ax.set_title("latency under load (ms)")
    ax.legend()
    ax = axes[1][0]
    hist = scenarios.get("history")
    if hist:
        sizes = sorted(int(s) for s in hist["sizes"])
        ax.plot(sizes, [hist["sizes"][str(s)]["latency_ms"]["p50"] for s in sizes], "o-", label="p50")
        ax.plot(sizes, [hist["sizes"][str(s)]["latency_ms"]["p95"] for s in sizes], "s--", label="p95")
        ax.set_xscale("log")
        ax.set_ylim(bottom=0)
        ax.legend()
    else:
        ax.axis("off")
        ax.text(0.5, 0.5, "history scenario not run\n(--scenarios history)", ha="center", va="center")
    ax.set_title("one user: latency (ms) vs stored turns")
    ax = axes[1][1]
    for i, (key, part) in enumerate(loads):
        calls = part.get("calls_per_turn", {})
        ax.bar(
            [j + i * 0.2 for j in range(len(SERVICE_KEYS))],
            [calls.get(k, 0) for k in SERVICE_KEYS],
            0.2,
            label=key,
        )
    ax.set_xticks(
        [j + 0.2 for j in range(len(SERVICE_KEYS))], [CALL_NAMES[k] for k in SERVICE_KEYS], fontsize=8
    )
    ax.set_title("backend calls per turn")
    if loads:
        ax.legend()
    fig.suptitle(f"daca-kit bench {report['started_at']}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
