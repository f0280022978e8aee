"""The Usage tab: where each part runs, which of their ports open from here, and the free-tier meter
(the same numbers as `GET /usage` and `GET /health`).

    view = UsageView()                               # inside the caller's gr.Tabs
    view.wire(token, UsageHandlers(kit, sessions))   # token: the Review tab's session token

Anyone sees the totals; the count of each user needs a reviewer signed in on the Review tab.
"""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr
import pandas as pd

from daca_kit.core.kit import Kit
from daca_kit.core.models import Reachability
from daca_kit.errors import CountersError
from daca_kit.web.ui.handlers import PRIVATE, readable_errors
from daca_kit.web.ui.reviewers import ReviewerSessions

log = logging.getLogger(__name__)

PARTS = {
    "model": "Reply model",
    "database": "Conversations and reviews",
    "counters": "Message counters",
    "events": "Event bus",
    "workflow": "Workflow runtime",
}
METER_COLUMNS = [
    "Part",
    "Runs on",
    "Free tier",
    "Used so far",
    "Per chat turn",
    "Free quota a day",
    "Share of daily quota",
    "Turns a day it allows",
]


class UsageHandlers:
    """The function behind the Usage tab.

    backends, meter, chart, note, counts_md, counts_df, reach_md = UsageHandlers(kit, sessions).usage(
        token, profile
    )
    """

    def __init__(self, kit: Kit, sessions: ReviewerSessions) -> None:
        self.kit = kit
        self.sessions = sessions

    @readable_errors
    def usage(self, token: Any, profile: gr.OAuthProfile | None) -> tuple[Any, ...]:
        backends = self.kit.backends
        backend_table = pd.DataFrame(
            [[name, backends[key].description] for key, name in PARTS.items()],
            columns=["Part", "Runs on"],
        )
        report = self.kit.usage()
        rows = report["services"]
        meter = pd.DataFrame(
            [
                [
                    PARTS.get(r["service"], r["service"]),
                    backends[r["service"]].description,
                    r["free_tier"] or "none (embedded)",
                    f"{r['used']:g} {r['unit'][:-1] if r['used'] == 1 else r['unit']}",
                    f"{r['per_turn']:g}",
                    "" if r["quota_per_day"] is None else f"{r['quota_per_day']:,}",
                    "" if r["percent_of_daily_quota"] is None else f"{r['percent_of_daily_quota']:g} %",
                    "" if r["turns_per_day"] is None else f"{r['turns_per_day']:,}",
                ]
                for r in rows
            ],
            columns=METER_COLUMNS,
        )
        chart = pd.DataFrame(
            {
                "part": [PARTS.get(r["service"], r["service"]) for r in rows],
                "calls": [float(r["used"]) for r in rows],
                "quota": ["free tier" if r["free_tier"] else "embedded (no quota)" for r in rows],
            }
        )
        limit = report["sustainable_turns_per_day"]
        note = f"{report['note']} Turns completed since start: {report['turns_completed']}."
        if limit is not None:
            note = f"**About {limit:,} chat turns a day fit in the free tiers.** " + note
        try:
            counts = self.kit.all_counts()
        except CountersError as exc:
            log.warning("message counts unavailable: %s", exc)
            counts_md = "Message counts are unavailable right now (the counters service is down)."
            counts_df: Any = pd.DataFrame([], columns=["User", "Messages"])
        else:
            total = sum(counts.values())
            counts_md = f"{len(counts)} user(s) have sent {total} message(s)."
            if self.sessions.valid(token, profile):
                ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
                counts_df = pd.DataFrame([[u, c] for u, c in ordered], columns=["User", "Messages"])
            else:
                counts_md += " Log in on the Review tab to see the count of each user."
                counts_df = pd.DataFrame([], columns=["User", "Messages"])
        return (
            backend_table,
            meter,
            chart,
            note,
            counts_md,
            gr.Dataframe(value=counts_df, visible=self.sessions.valid(token, profile)),
            reach_text(self.kit.reachability),
        )


def reach_text(reach: Reachability) -> str:
    """Markdown: the configured services' ports as the app found them at start, and the fallbacks."""
    if not reach.checked:
        return "**Outbound ports:** being checked (the app probes its services' ports once, at start)."
    if not reach.ports:
        return "**Outbound ports:** nothing to check: every part runs embedded."
    lines = ["**Outbound ports from this app** (probed once at start):", ""]
    for port in reach.ports:
        state = "open" if port.open else f"**closed** ({port.detail})"
        lines.append(f"- `{port.setting or port.service}` port {port.port}: {state}")
    lines += [f"- Fallback: {note}" for note in reach.fallbacks]
    return "\n".join(lines)


class UsageView:
    """The Usage tab's components, laid out on construction; `wire` connects them to the handler.

    with gr.Tabs(): view = UsageView()
    view.wire(token, handlers)
    """

    def __init__(self) -> None:
        """Adds the tab and its components to the gr.Tabs being built."""
        with gr.Tab("Usage", id="usage") as self.tab:
            self.note = gr.Markdown(elem_id="usage-note")
            self.reach_md = gr.Markdown(elem_id="usage-reach")
            with gr.Row():
                self.backends_df = gr.Dataframe(
                    pd.DataFrame([], columns=["Part", "Runs on"]),
                    interactive=False,
                    label="Where each part runs",
                )
                with gr.Column():
                    self.counts_md = gr.Markdown()
                    self.counts_df = gr.Dataframe(
                        pd.DataFrame([], columns=["User", "Messages"]),
                        interactive=False,
                        label="Messages per user",
                        visible=False,
                        max_height=300,
                    )
            self.meter_df = gr.Dataframe(
                pd.DataFrame([], columns=METER_COLUMNS),
                interactive=False,
                wrap=True,
                label="Free-tier meter: backend calls so far against each service's free quota",
            )
            self.chart = gr.BarPlot(
                None,
                x="part",
                y="calls",
                color="quota",
                title="Backend calls so far",
                x_title="part",
                y_title="calls",
                height=280,
            )
            self.refresh_btn = gr.Button("Refresh", size="sm")

    def wire(self, token: gr.BrowserState, handlers: UsageHandlers) -> None:
        """Reads the meter when the tab opens and on Refresh."""
        gr.on(
            [self.tab.select, self.refresh_btn.click],
            handlers.usage,
            inputs=[token],
            outputs=[
                self.backends_df,
                self.meter_df,
                self.chart,
                self.note,
                self.counts_md,
                self.counts_df,
                self.reach_md,
            ],
            concurrency_limit=4,
            **PRIVATE,
        )
