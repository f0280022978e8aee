"""Reviewer sign-in for the Review and Usage tabs: a password (throttled like REST) traded for a signed
session token that the browser keeps, or Hugging Face sign-in read from Gradio's OAuth session."""

from __future__ import annotations

from typing import Any

import gradio as gr

from daca_kit.errors import RateLimited
from daca_kit.web.auth import Auth

LOGIN_FIRST = "Log in as a reviewer first: the Review tab asks for your reviewer name and password."
WRONG = "Wrong reviewer name or password."


class ReviewerSessions:
    """The UI's view of `Auth`: who is signed in, from a token or a Hugging Face profile.

        token, warning = sessions.sign_in(name, password, request)   # token None when refused
        sessions.reviewer(token, profile)   # ("alice", "password") | ("bob", "Hugging Face") | None

    Tokens are signed and expire (`Auth.issue`), so they need no server-side state: the Review tab keeps
    them in the browser (gr.BrowserState), and they survive a restart. A value sent for the token slot
    through Gradio's HTTP API is only as good as its signature. A Hugging Face profile counts only for a
    username listed in DACA_REVIEWERS.
    """

    def __init__(self, auth: Auth) -> None:
        self.auth = auth

    def client(self, request: gr.Request | None) -> str:
        """The caller's address, from the socket or (behind a trusted proxy) X-Forwarded-For."""
        peer = getattr(getattr(request, "client", None), "host", None)
        headers = getattr(request, "headers", None) or {}
        return self.auth.client_of(peer, headers.get("x-forwarded-for"))

    def sign_in(self, name: str, password: str, request: gr.Request | None) -> tuple[str | None, str | None]:
        """(token, None) on success; (None, the sentence to show) when refused or throttled."""
        try:
            reviewer = self.auth.sign_in(str(name or ""), str(password or ""), self.client(request))
        except RateLimited as exc:
            return None, str(exc)
        if reviewer is None:
            return None, WRONG
        return self.auth.issue(reviewer), None

    def reviewer(self, token: Any, profile: gr.OAuthProfile | None = None) -> tuple[str, str] | None:
        """(name, how they signed in) or None."""
        name = self.auth.reviewer_of(token)
        if name is not None:
            return name, "password"
        if profile is not None:
            hf_name = self.auth.hf_reviewer(getattr(profile, "username", None))
            if hf_name is not None:
                return hf_name, "Hugging Face"
        return None

    def valid(self, token: Any, profile: gr.OAuthProfile | None = None) -> bool:
        return self.reviewer(token, profile) is not None

    def require(self, token: Any, profile: gr.OAuthProfile | None = None) -> str:
        """The reviewer's name; refuses a review function called without a sign-in (Gradio's HTTP API
        reaches them all)."""
        who = self.reviewer(token, profile)
        if who is None:
            raise gr.Error(LOGIN_FIRST, print_exception=False)
        return who[0]

    def not_listed(self, profile: gr.OAuthProfile | None) -> str | None:
        """The sentence for someone signed in to Hugging Face whom DACA_REVIEWERS does not list."""
        username = getattr(profile, "username", None)
        if username and self.auth.hf_reviewer(username) is None:
            return (
                f"You are signed in to Hugging Face as {username}, who is not a reviewer here: "
                "ask the Space's owner to add you to DACA_REVIEWERS."
            )
        return None
