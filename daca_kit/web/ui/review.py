"""The Review tab: reviewers sign in, read the pending messages oldest first, and approve, edit or reject.

    view = ReviewView(password=True, huggingface=False)        # inside the caller's gr.Tabs
    view.wire(token, ReviewHandlers(kit, watch, sessions))     # token: the gr.BrowserState Usage reads too

A reviewer signs in with a name and password, which puts a signed session token in the browser's
`token` state (it survives a reload and a restart), or with Hugging Face (a `gr.LoginButton`, when
DACA_REVIEWERS lists Hugging Face usernames), which Gradio keeps in its session cookie. Every function
here checks one or the other, since Gradio's HTTP API reaches private functions too; each decision is
recorded under the reviewer's name. The lists are re-read only when `TurnWatch`
saw a change (or every 30 seconds, for changes made by another process).
"""

from __future__ import annotations

import gradio as gr
import pandas as pd

from daca_kit.web.ui.handlers import PRIVATE
from daca_kit.web.ui.review_handlers import AUDIT_COLUMNS, PENDING_COLUMNS, ReviewHandlers

REVIEW_TICK = 2.0


def _table(columns: list[str], label: str, elem_id: str) -> gr.Dataframe:
    """An empty, read-only table of the Review tab."""
    return gr.Dataframe(
        pd.DataFrame([], columns=columns),
        interactive=False,
        wrap=True,
        max_height=320,
        label=label,
        elem_id=elem_id,
    )


class ReviewView:
    """The Review tab's components, laid out on construction; `wire` connects them to the handlers.

    with gr.Tabs(): view = ReviewView(password=True, huggingface=False)
    view.wire(token, handlers)

    `huggingface` adds Gradio's "Sign in with Hugging Face" button (only then does Gradio install its
    OAuth routes); `password` the name and password form.
    """

    def __init__(self, *, password: bool = True, huggingface: bool = False) -> None:
        """Adds the tab and its components to the gr.Tabs being built."""
        with gr.Tab("Review", id="review") as self.tab:
            if huggingface:
                gr.LoginButton(elem_id="review-hf-login")
            with gr.Column(visible=True) as self.login_box:
                gr.Markdown(
                    "Reviewers only: sign in with your reviewer name and password "
                    "(leave the name empty for `reviewer`, whose password is `DACA_REVIEWER_PASSWORD`)."
                    if password
                    else "Reviewers only: sign in with Hugging Face (the usernames listed in `DACA_REVIEWERS`)."
                )
                self.name = gr.Textbox(
                    label="Reviewer name",
                    placeholder="reviewer",
                    max_lines=1,
                    elem_id="review-name",
                    visible=password,
                )
                self.password = gr.Textbox(
                    label="Password",
                    type="password",
                    max_lines=1,
                    elem_id="review-password",
                    visible=password,
                )
                self.login_btn = gr.Button(
                    "Log in", variant="primary", elem_id="review-login", visible=password
                )
            with gr.Column(visible=False) as self.review_box:
                self.state = gr.State({})
                self.selected = gr.State(None)
                self.timer = gr.Timer(REVIEW_TICK, active=False)
                with gr.Row():
                    self.who = gr.Markdown(elem_id="review-who")
                    self.logout_btn = gr.Button("Log out", size="sm", scale=0)
                gr.Markdown("### Waiting for a decision (oldest first)\nClick a row to read it and decide.")
                self.pending_df = _table(PENDING_COLUMNS, "Pending reviews", "review-pending")
                with gr.Column(visible=False) as self.detail_box:
                    self.detail_md = gr.Markdown()
                    with gr.Row():
                        with gr.Column():
                            self.message_view = gr.Textbox(label="Message", interactive=False, lines=3)
                            self.proposed_view = gr.Textbox(
                                label="Proposed reply", interactive=False, lines=4
                            )
                            self.reply_edit = gr.Textbox(
                                label="Reply to send (edit it if needed)",
                                lines=4,
                                max_lines=12,
                                elem_id="review-reply",
                            )
                            self.reason_box = gr.Textbox(label="Reason for rejecting (optional)", max_lines=2)
                            with gr.Row():
                                self.approve_btn = gr.Button(
                                    "Approve and send", variant="primary", elem_id="review-approve"
                                )
                                self.reject_btn = gr.Button("Reject", variant="stop", elem_id="review-reject")
                        self.history_view = gr.Chatbot(
                            label="This user's recent history",
                            height=380,
                            render_markdown=False,
                            buttons=["copy_all"],
                        )
                gr.Markdown("### Decisions (audit trail, newest first)")
                self.audit_df = _table(AUDIT_COLUMNS, "Decided reviews", "review-audit")

    def wire(self, token: gr.BrowserState, handlers: ReviewHandlers) -> None:
        """The tab's events; all but login and logout check the login token server-side."""
        tables = [self.pending_df, self.audit_df, self.state]
        signed_in = [
            token,
            self.password,
            self.login_box,
            self.review_box,
            *tables,
            self.timer,
            self.who,
            self.logout_btn,
        ]
        gr.on(
            [self.login_btn.click, self.password.submit],
            handlers.review_login,
            inputs=[self.name, self.password],
            outputs=signed_in,
            concurrency_limit=4,
            **PRIVATE,
        )
        self.tab.select(handlers.review_enter, inputs=[token], outputs=signed_in, **PRIVATE)
        self.logout_btn.click(
            handlers.review_logout,
            inputs=[token],
            outputs=[
                token,
                self.login_box,
                self.review_box,
                *tables,
                self.timer,
                self.selected,
                self.detail_box,
            ],
            **PRIVATE,
        )
        self.timer.tick(
            handlers.review_tick,
            inputs=[token, self.state],
            outputs=[token, self.login_box, self.review_box, *tables, self.timer],
            show_progress="hidden",
            concurrency_limit=None,
            **PRIVATE,
        )
        self.pending_df.select(
            handlers.review_select,
            inputs=[token, self.state],
            outputs=[
                self.selected,
                self.detail_box,
                self.detail_md,
                self.message_view,
                self.proposed_view,
                self.reply_edit,
                self.history_view,
            ],
            concurrency_limit=None,
            **PRIVATE,
        )
        decide_inputs = [token, self.selected, self.reply_edit, self.reason_box, self.state]
        decide_outputs = [self.selected, self.detail_box, self.detail_md, self.reason_box, *tables]
        for button, decide in (
            (self.approve_btn, handlers.decider(True)),
            (self.reject_btn, handlers.decider(False)),
        ):
            button.click(decide, inputs=decide_inputs, outputs=decide_outputs, concurrency_limit=4, **PRIVATE)
