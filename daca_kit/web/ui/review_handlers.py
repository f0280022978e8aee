"""The functions behind the Review tab's events (`ReviewHandlers`); the tab's layout is `review.ReviewView`.

Every function checks the reviewer's signed session token or Hugging Face sign-in, since Gradio's HTTP
API reaches private functions too; each decision is recorded under the reviewer's name.
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
from daca_kit.web.ui.handlers import readable_errors
from daca_kit.web.ui.reviewers import ReviewerSessions
from daca_kit.web.ui.text import clip, short_time, waiting_text
from daca_kit.web.ui.watch import TurnWatch

REVIEW_HISTORY_LIMIT = 6
PENDING_COLUMNS = ["Waiting", "User", "Message", "Received (UTC)", "Ref"]
AUDIT_COLUMNS = ["Decided (UTC)", "By", "Decision", "Edited", "Reason", "User", "Message"]


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
