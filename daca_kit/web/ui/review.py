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

import time
from collections.abc import Callable
from typing import Any

import gradio as gr
import pandas as pd

from daca_kit.core.kit import Kit
from daca_kit.errors import AlreadyDecided, InputError, NotFound
from daca_kit.web.ui.conversation import history_messages
from daca_kit.web.ui.handlers import PRIVATE, readable_errors
from daca_kit.web.ui.reviewers import ReviewerSessions
from daca_kit.web.ui.text import clip, short_time, waiting_text
from daca_kit.web.ui.watch import TurnWatch

REVIEW_HISTORY_LIMIT = 6
REVIEW_TICK = 2.0
PENDING_COLUMNS = ["Waiting", "User", "Message", "Received (UTC)", "Ref"]
AUDIT_COLUMNS = ["Decided (UTC)", "By", "Decision", "Edited", "Reason", "User", "Message"]


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


class ReviewHandlers:
    """The functions behind the Review tab's events; all but login and logout refuse a session without
    a valid login token.

    handlers = ReviewHandlers(kit, watch, ReviewerSessions(auth))
    """

    def __init__(self, kit: Kit, watch: TurnWatch, sessions: ReviewerSessions) -> None:
        self.kit = kit
        self.watch = watch
        self.sessions = sessions

    def _review_lists(self, state: dict[str, Any]) -> tuple[Any, Any]:
        now = time.monotonic()
        if state.get("generation") != self.watch.generation or now - state.get("read_at", 0.0) > 30:
            state["generation"] = self.watch.generation
            state["rows"] = self.kit.reviews.pending()
            state["audit"] = self.kit.reviews.decided()
            state["read_at"] = now
        elapsed = now - state["read_at"]
        pending = [
            [
                waiting_text(r["waiting_seconds"] + elapsed),
                r["user_id"],
                clip(r["message"]),
                short_time(r["created_at"]),
                r["instance_id"][:8],
            ]
            for r in state["rows"]
        ]
        audit = [
            [
                short_time(a["decided_at"]),
                a["decided_by"] or "",
                a["status"],
                "yes" if a["edited"] else "no",
                a["reason"] or "",
                a["user_id"],
                clip(a["message"], 80),
            ]
            for a in state["audit"]
        ]
        return pending, audit

    def _tables(self, state: dict[str, Any]) -> tuple[Any, Any]:
        pending, audit = self._review_lists(state)
        shown = (pending, audit)
        if state.get("shown") == shown:
            return gr.skip(), gr.skip()
        state["shown"] = shown
        return (
            pd.DataFrame(pending, columns=PENDING_COLUMNS),
            pd.DataFrame(audit, columns=AUDIT_COLUMNS),
        )

    def _signed_in(self, who: tuple[str, str], token: Any) -> tuple[Any, ...]:
        """The outputs of a sign-in: token, password box, the two columns, tables, timer, who, log out."""
        state: dict[str, Any] = {}
        pending, audit = self._tables(state)
        name, how = who
        return (
            token,
            "",
            gr.Column(visible=False),
            gr.Column(visible=True),
            pending,
            audit,
            state,
            gr.Timer(active=True),
            f"Signed in as **{name}** ({how}). Your decisions are recorded under this name.",
            gr.Button(visible=how == "password"),  # Hugging Face users log out with its button
        )

    @readable_errors
    def review_login(self, name: str, password: str, request: gr.Request) -> tuple[Any, ...]:
        token, refused = self.sessions.sign_in(name, password, request)
        if token is None:
            gr.Warning(refused or "", duration=5)
            return (None, "", *(gr.skip() for _ in range(8)))
        who = self.sessions.reviewer(token)
        assert who is not None  # a token just issued
        return self._signed_in(who, token)

    @readable_errors
    def review_enter(self, token: Any, profile: gr.OAuthProfile | None) -> tuple[Any, ...]:
        """Opening the tab: a reviewer who signed in before (token or Hugging Face) sees the lists at once."""
        who = self.sessions.reviewer(token, profile)
        if who is not None:
            return self._signed_in(who, gr.skip())
        refused = self.sessions.not_listed(profile)
        if refused:
            gr.Warning(refused, duration=8)
        # A token that no longer verifies (expired, or a changed password) is dropped.
        return (None if token is not None else gr.skip(), *(gr.skip() for _ in range(9)))

    @readable_errors
    def review_logout(self, token: Any) -> tuple[Any, ...]:
        empty_p, empty_a = pd.DataFrame([], columns=PENDING_COLUMNS), pd.DataFrame([], columns=AUDIT_COLUMNS)
        return (
            None,
            gr.Column(visible=True),
            gr.Column(visible=False),
            empty_p,
            empty_a,
            {},
            gr.Timer(active=False),
            None,
            gr.Column(visible=False),
        )

    @readable_errors
    def review_tick(
        self, token: Any, state: dict[str, Any] | None, profile: gr.OAuthProfile | None
    ) -> tuple[Any, ...]:
        if token is not None and not self.sessions.valid(token, profile):
            gr.Warning("Your reviewer session ended: log in again.")
            return self.review_logout(token)[:7]
        self.sessions.require(token, profile)
        state = state if isinstance(state, dict) else {}
        pending, audit = self._tables(state)
        return (gr.skip(), gr.skip(), gr.skip(), pending, audit, state, gr.skip())

    @readable_errors
    def review_select(
        self,
        token: Any,
        state: dict[str, Any] | None,
        evt: gr.SelectData,
        profile: gr.OAuthProfile | None,
    ) -> tuple[Any, ...]:
        self.sessions.require(token, profile)
        rows = (state or {}).get("rows") or []
        index = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
        if not isinstance(index, int) or not 0 <= index < len(rows):
            return (*(gr.skip() for _ in range(7)),)
        return self._details(rows[index]["instance_id"])

    def _details(self, instance_id: str) -> tuple[Any, ...]:
        try:
            review = self.kit.reviews.get(instance_id)
            history = self.kit.conversations(review["user_id"], REVIEW_HISTORY_LIMIT)
        except NotFound as exc:
            gr.Warning(str(exc))
            return (None, gr.Column(visible=False), "", "", "", "", [])
        header = f"**From `{review['user_id']}`**, received {short_time(review['created_at'])} UTC"
        return (
            instance_id,
            gr.Column(visible=True),
            header,
            review["message"],
            review["proposed_reply"],
            review["proposed_reply"],
            history_messages(history),
        )

    def review_decide(
        self,
        approved: bool,
        token: Any,
        instance_id: Any,
        reply: str,
        reason: str,
        state: dict[str, Any] | None,
        profile: gr.OAuthProfile | None,
    ) -> tuple[Any, ...]:
        reviewer = self.sessions.require(token, profile)
        state = state if isinstance(state, dict) else {}
        if not instance_id:
            gr.Warning("Select a message in the table first.")
            return tuple(gr.skip() for _ in range(7))
        try:
            review = self.kit.reviews.get(instance_id)
            edited = (
                reply
                if approved and (reply or "").strip() and reply.strip() != review["proposed_reply"].strip()
                else None
            )
            self.kit.reviews.decide(
                instance_id,
                approved=approved,
                reply=edited,
                reason=(reason or "").strip() or None,
                reviewer=reviewer,
            )
        except AlreadyDecided:
            gr.Warning("Already decided: another reviewer answered this message first.")
        except (NotFound, InputError) as exc:
            gr.Warning(str(exc))
            return tuple(gr.skip() for _ in range(7))
        else:
            if approved:
                gr.Info(
                    "Approved: the user sees the edited reply now."
                    if edited
                    else "Approved: the user sees the reply now."
                )
            else:
                gr.Info("Rejected: the user was told the message was rejected.")
        state["generation"] = None  # read the lists again
        pending, audit = self._tables(state)
        return (None, gr.Column(visible=False), "", "", pending, audit, state)

    def decider(self, approved: bool) -> Callable[..., tuple[Any, ...]]:
        """The Approve (True) or Reject button's function, named review_approve or review_reject."""

        def decide(
            token: Any,
            instance_id: Any,
            reply: str,
            reason: str,
            state: dict[str, Any] | None,
            profile: gr.OAuthProfile | None,
        ) -> tuple[Any, ...]:
            return self.review_decide(approved, token, instance_id, reply, reason, state, profile)

        decide.__name__ = decide.__qualname__ = "review_approve" if approved else "review_reject"
        return readable_errors(decide)


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
