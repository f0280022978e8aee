"""The Gradio UI: Chat, Review and Usage tabs, mounted at "/" on the REST API's FastAPI app.

    api = mount_ui(create_api(kit, auth=auth), kit, auth)    # what daca_kit.web.server.build_app does

One module per tab, each with the handlers behind its events and a view that lays out its components
and wires them: chat, review, usage. build_blocks composes them; the pieces they share are watch (which
turns ended), reviewers (login tokens), conversation (a chat session and how it is shown), handlers
(errors as sentences, private events) and text (times and waits). The UI imports core, settings,
errors and web.auth, never an adapter or ops.

Chat is open to anyone; a held reply appears by itself once a reviewer decides (a `gr.Timer` reads
the turn only after the runtime reported that it ended, so a pending review costs no backend calls).
Review needs the reviewer password: login issues a token kept server-side in the session's `gr.State`,
and every review function checks it, so calling those functions through Gradio's HTTP API without
logging in is refused (they are also left out of the API docs). The Usage tab reads the same token to
show each user's count. No secret setting is ever displayed.
"""

from __future__ import annotations

import gradio as gr
from fastapi import FastAPI

from daca_kit.core.kit import Kit
from daca_kit.web.auth import Auth
from daca_kit.web.ui.chat import ChatHandlers, ChatView
from daca_kit.web.ui.review import ReviewHandlers, ReviewView
from daca_kit.web.ui.reviewers import ReviewerSessions
from daca_kit.web.ui.usage import UsageHandlers, UsageView
from daca_kit.web.ui.watch import TurnWatch

__all__ = ["build_blocks", "mount_ui"]

CSS = """
.daca-status p { margin: 0; }
.daca-note { font-size: var(--text-sm); opacity: 0.85; }
"""


def build_blocks(kit: Kit, auth: Auth) -> gr.Blocks:
    """The UI as a gr.Blocks, not mounted (tests and notebooks may launch it on its own)."""
    watch = TurnWatch(kit)
    sessions = ReviewerSessions(auth)
    keywords = ", ".join(f"*{k}*" for k in kit.settings.keywords) or "none"
    with gr.Blocks(title="daca_kit chat", analytics_enabled=False) as blocks:
        gr.Markdown(
            "# daca_kit chat\nChat with the assistant. Messages that mention "
            f"{keywords} wait for a human reviewer before you get the reply."
        )
        for warning in kit.warnings():
            gr.Markdown(f"ℹ {warning}", elem_classes=["daca-note"])
        token = gr.State(None)  # the reviewer's login token: Review sets it, Usage reads it
        with gr.Tabs():
            chat = ChatView()
            review = ReviewView()
            usage = UsageView()
        # Events after the layout: gr.api adds its (hidden) components where it is called.
        chat.wire(blocks, ChatHandlers(kit, watch))
        review.wire(token, ReviewHandlers(kit, watch, sessions))
        usage.wire(token, UsageHandlers(kit, sessions))
    return blocks


def mount_ui(api: FastAPI, kit: Kit, auth: Auth) -> FastAPI:
    """Mounts the UI at "/" on `api`, whose REST routes are already declared (Gradio needs them first)."""
    blocks = build_blocks(kit, auth)
    return gr.mount_gradio_app(
        api,
        blocks,
        path="/",
        footer_links=["api", "gradio", "settings"],
        # Run history would keep call inputs, the reviewer password among them, in the browser.
        run_history=False,
        max_file_size="1mb",
        theme=gr.themes.Soft(),
        css=CSS,
    )
