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


def load_rows(scenarios: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(name, result) of each concurrent load phase: embedded, real per worker count, raw, external."""
    rows: list[tuple[str, dict[str, Any]]] = []
    if scenarios.get("embedded"):
        rows.append(("embedded", scenarios["embedded"]))
    for workers, part in sorted((scenarios.get("real") or {}).items(), key=lambda kv: int(kv[0])):
        rows.append((f"real, {workers}w", part))
    if scenarios.get("raw"):
        rows.append((f"raw, {scenarios['raw'].get('workers', 1)}w", scenarios["raw"]))
    if scenarios.get("external"):
        rows.append(("external", scenarios["external"]))
    return rows


def targets(scenarios: dict[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    """The issue's targets, with the measured value and whether it was met (reported, not asserted)."""
    rows: list[dict[str, Any]] = []

    def add(name: str, target: str, value: Any, met: bool | None) -> None:
        rows.append({"name": name, "target": target, "value": value, "met": met})

    real = {int(w): part for w, part in (scenarios.get("real") or {}).items() if "error" not in part}
    for workers, floor in ((2, 1.0), (1, 0.8)):
        ratio = ((real.get(workers) or {}).get("ratio_to_raw") or {}).get("sustained")
        if ratio is not None:
            add(
                f"{workers} worker(s), sustained turns/s: kit vs raw stack",
                f">= {floor}",
                ratio,
                ratio >= floor,
            )
    for workers, part in sorted(real.items()):
        p99 = ((part.get("sustained") or {}).get("event_lag_ms") or {}).get("p99")
        if p99 is not None:
            add(f"{workers} worker(s): event lag p99, commit to counted", "< 1000 ms", p99, p99 < 1000)
    single = (real.get(1) or {}).get("single_user")
    embedded = (scenarios.get("embedded") or {}).get("single_user")
    for name, part, limit in (("real, 1 worker", single, 7), ("embedded", embedded, 10)):
        if part:
            p50 = part["latency_ms"]["p50"]
            p50_model_excluded = None if p50 is None else round(p50 - args.model_delay * 1000, 2)
            add(
                f"{name}: one user p50 (model excluded)",
                f"<= {limit} ms",
                p50_model_excluded,
                p50_model_excluded is not None and p50_model_excluded <= limit,
            )
    calls = (real.get(1) or {}).get("calls_per_turn")
    if calls:
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


def _errors(part: dict[str, Any]) -> str:
    return ",".join(f"{code}x{n}" for code, n in sorted((part.get("errors") or {}).items())) or "-"


def table(report: dict[str, Any]) -> str:
    scenarios = report["scenarios"]
    lines = [
        "",
        f"{'scenario':<24}{'users':>6}{'turns':>7}{'turns/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
        f"{'SQL':>6}{'Redis':>6}{'AMQP':>6}{'model':>6}{'RSS MiB':>8}{'CPU ms':>8}{'load ms':>8}  errors",
    ]

    def row(name: str, part: dict[str, Any]) -> None:
        if "error" in part:
            lines.append(f"{name:<24}  did not run: {part['error']}")
            return
        lat, calls = part["latency_ms"], part.get("calls_per_turn") or {}
        server = part.get("server") or {}
        rss = server.get("rss_kib")

        def call(key: str) -> str:
            return f"{calls[key]:>6.2f}" if key in calls else f"{'-':>6}"

        lines.append(
            f"{name:<24}{part['users']:>6}{part['turns_ok']:>7}{part['turns_per_s'] or 0:>9.1f}"
            f"{lat['p50'] or 0:>9.2f}{lat['p95'] or 0:>9.2f}{lat['p99'] or 0:>9.2f}"
            f"{call('database')}{call('counters')}{call('events')}{call('model')}"
            f"{(rss or 0) / 1024:>8.1f}{server.get('cpu_ms_per_turn') or 0:>8.2f}"
            f"{part.get('client_cpu_ms_per_turn') or 0:>8.2f}  {_errors(part)}"
        )

    for name, part in load_rows(scenarios):
        row(name, part)
        if part.get("single_user"):
            row(f"{name}, one user", part["single_user"])
    hist = scenarios.get("history")
    if hist:
        for size, part in hist["sizes"].items():
            row(f"history {int(size):,} ({hist['backend']})", part)
    lines.extend(sustained_table(scenarios))
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


def sustained_table(scenarios: dict[str, Any]) -> list[str]:
    """Answered vs answered-and-counted, the ratio to raw, the backlog at the stop and the event lag."""
    rows = [(n, p) for n, p in load_rows(scenarios) if p.get("sustained")]
    if not rows:
        return []
    lines = [
        "",
        f"{'sustained':<24}{'answered/s':>11}{'counted/s':>10}{'x raw':>7}{'(answ.)':>8}{'backlog':>8}"
        f"{'outbox':>7}{'queued':>7}{'exact s':>8}{'lag p50':>8}{'lag p99':>8}{'ans p99':>8}{'new conn':>9}",
    ]
    for name, part in rows:
        for label, phase in ((name, part), (f"{name}, one user", part.get("single_user") or {})):
            held = phase.get("sustained")
            if not held:
                continue
            ratio = phase.get("ratio_to_raw") or {}
            stop, lag = held["at_stop"], held["event_lag_ms"]
            seen = held.get("answer_to_counted_ms") or {}

            def num(value: Any, width: int, spec: str = ".0f") -> str:
                return f"{value:>{width}{spec}}" if value is not None else f"{'-':>{width}}"

            lines.append(
                f"{label:<24}{num(phase['turns_per_s'], 11, '.1f')}{num(held['sustained_turns_per_s'], 10, '.1f')}"
                f"{num(ratio.get('sustained'), 7, '.2f')}{num(ratio.get('answered'), 8, '.2f')}"
                f"{held['not_counted_at_stop']:>8}{num(stop.get('outbox_rows'), 7)}{num(stop.get('queue_ready'), 7)}"
                f"{num(held['seconds_to_exact_counts'], 8, '.2f')}{num(lag['p50'], 8)}{num(lag['p99'], 8)}"
                f"{num(seen.get('p99'), 8)}{num(stop.get('new_db_sessions'), 9)}"
            )
    lines.append(
        "  counted/s: turns answered and counted by the stop; x raw: over the raw reference's attempted "
        "turns/s; backlog: answered, not counted at the stop; lag: ms from the stored time to counted "
        "(an upper bound of commit to counted), ans: from the answer to counted (a lower bound); new conn: "
        "database sessions opened during the load"
    )
    return lines


def chart(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = report["scenarios"]
    loads = [(k, p) for k, p in load_rows(scenarios) if "error" not in p]
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    ax = axes[0][0]
    places = range(len(loads))
    ax.bar([j - 0.2 for j in places], [p["turns_per_s"] or 0 for _, p in loads], 0.4, label="answered")
    counted = [((p.get("sustained") or {}).get("sustained_turns_per_s") or 0) for _, p in loads]
    ax.bar([j + 0.2 for j in places], counted, 0.4, label="answered and counted")
    ax.set_xticks(list(places), [k for k, _ in loads])
    ax.set_title("throughput (turns/s)")
    ax.legend()
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
        calls = part.get("calls_per_turn") or {}
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
