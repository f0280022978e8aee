"""The Gradio UI: Chat, Review and Usage tabs, mounted at "/" on the REST API's FastAPI app.

    api = mount_ui(create_api(kit, auth=auth), kit, auth)    # what daca_kit.web.server.build_app does

One module per tab, each with the handlers behind its events and a view that lays out its components
and wires them: chat, review (its handlers in review_handlers), usage. build_blocks composes them; the pieces they share are watch (which
turns ended), reviewers (who is signed in), conversation (a chat session and how it is shown), streaming
(a reply that grows in its bubble while the model writes it), handlers
(errors as sentences, private events) and text (times and waits). The UI imports core, settings,
errors and web.auth, never an adapter or ops.

Chat is open to anyone, as a user id the server gives the browser (a signed token it keeps) or, on a Space
with Hugging Face sign-in, as the signed-in user; nobody can load another browser's history. A held reply
appears by itself once a reviewer decides (a `gr.Timer` reads
the turn only after the runtime reported that it ended, so a pending review costs no backend calls).
Review needs a reviewer: a name and password (throttled per account and client, like REST) issue a
signed, expiring session token that the browser keeps (`gr.BrowserState`: it survives a reload and a
restart), or, when DACA_REVIEWERS lists Hugging Face usernames, "Sign in with Hugging Face" (Gradio's
OAuth; a local mock outside a Space). Every review function checks one or the other, so calling those
functions through Gradio's HTTP API without signing in is refused (they are also left out of the API
docs). The Usage tab reads the same sign-in to show each user's count. No secret setting is displayed.
"""

from __future__ import annotations

import gradio as gr
from fastapi import FastAPI

from daca_kit.core.kit import Kit
from daca_kit.errors import ConfigError
from daca_kit.web.auth import Auth
from daca_kit.web.ui.chat import ChatHandlers, ChatView
from daca_kit.web.ui.review import ReviewView
from daca_kit.web.ui.review_handlers import ReviewHandlers
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
    # Visitors sign in with Hugging Face to chat as themselves only on a Space that offers it: elsewhere
    # Gradio's sign-in is a local mock that would sign every visitor in as this machine's account.
    hf_chat = kit.settings.on_space and bool(kit.settings.oauth_client_id)
    with gr.Blocks(title="daca_kit chat", analytics_enabled=False) as blocks:
        gr.Markdown(
            "# daca_kit chat\nChat with the assistant. Messages that mention "
            f"{keywords} wait for a human reviewer before you get the reply."
        )
        for warning in kit.warnings():
            gr.Markdown(f"ℹ {warning}", elem_classes=["daca-note"])
        # The reviewer's signed session token, kept in the browser: Review sets it, Usage reads it. Gradio's
        # `secret` only obscures it in localStorage (the page carries it); the token's signature protects it.
        token = gr.BrowserState(None, storage_key="daca-kit-reviewer", secret="daca-kit-reviewer-v1")
        with gr.Tabs():
            chat = ChatView(huggingface=hf_chat)
            review = ReviewView(password=auth.password_signin, huggingface=auth.hf_signin)
            usage = UsageView()
        # Events after the layout: gr.api adds its (hidden) components where it is called.
        chat.wire(blocks, ChatHandlers(kit, watch, auth, huggingface=hf_chat))
        review.wire(token, ReviewHandlers(kit, watch, sessions))
        usage.wire(token, UsageHandlers(kit, sessions))
    return blocks


def mount_ui(api: FastAPI, kit: Kit, auth: Auth) -> FastAPI:
    """Mounts the UI at "/" on `api`, whose REST routes are already declared (Gradio needs them first)."""
    try:
        return _mount(api, build_blocks(kit, auth))
    except Exception as exc:
        if not auth.hf_signin or kit.settings.on_space:
            raise
        # Outside a Space, Gradio's sign-in mock asks the Hub, as the UI is built, whom this machine's token
        # names.
        raise ConfigError(
            "DACA_REVIEWERS names Hugging Face users, and outside a Space Gradio's local sign-in mock needs "
            "this machine logged in to Hugging Face (HF_TOKEN, or `hf auth login`) and able to reach it "
            f"({type(exc).__name__}): give the reviewers password hashes instead (daca-kit reviewer-hash)"
        ) from exc


def _mount(api: FastAPI, blocks: gr.Blocks) -> FastAPI:
    return gr.mount_gradio_app(
        api,
        blocks,
        path="/",
        footer_links=["api", "gradio", "settings"],
        # Run history would keep call inputs, the reviewer password among them, in the browser.
        run_history=False,
        max_file_size="1mb",  # uploads are refused anyway (daca_kit.web.api.surface): the app takes no files
        # /monitoring/summary would show anyone every function and its call count.
        enable_monitoring=False,
        theme=gr.themes.Soft(),
        css=CSS,
    )
