"""The REST API (FastAPI), one router module per resource, compatible with the tutorial's curl calls.

    api = create_api(kit, auth=Auth.from_settings(kit.settings, kit.stores.keys))
    uvicorn.run(api, port=7860)            # daca_kit.web.server mounts the Gradio UI on the same app

chat (and chat_stream, its Server-Sent Events twin), conversations, users, analytics, reviews and system
hold the routes; schemas their bodies (shown at /docs); errors turns the kit's exceptions into HTTP answers;
limits caps request bodies on every path and surface sets security headers and refuses uploads (for the UI
too); events is the route Dapr pushes events to. Routes are declared before the UI is mounted at "/", as Gradio requires.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from daca_kit.core.kit import Kit
from daca_kit.web.api import analytics, chat, chat_stream, conversations, reviews, system, users
from daca_kit.web.api.errors import install_error_handlers
from daca_kit.web.api.events import events_router
from daca_kit.web.api.limits import BodyLimit
from daca_kit.web.api.surface import HF_FRAMERS, Surface
from daca_kit.web.auth import Auth

__all__ = ["create_api"]


def create_api(kit: Kit, *, auth: Auth | None = None) -> FastAPI:
    """The REST API on a kit that the caller starts and closes."""
    app = FastAPI(
        title="daca_kit",
        description="Chat with human review, stored turns, analytics counters and a free-tier meter.",
        version="0.1.0",
    )
    app.state.kit = kit
    app.state.auth = auth or Auth.from_settings(kit.settings, kit.stores.keys)
    install_error_handlers(app)
    for module in (chat, chat_stream, conversations, users, analytics, reviews, system):
        app.include_router(module.router)
    chat.install_fast_chat(app)
    if kit.pushed_events is not None:
        # Dapr delivers subscribed events (components/subscription.yaml) to POST /events/{topic}.
        app.include_router(events_router(kit.pushed_events))
    app.add_middleware(BodyLimit)
    # An explicit policy: only DACA_CORS_ORIGINS may call from other origins, without credentials. Its
    # presence also stops Gradio's own CORS handling, which echoes any Origin with credentials.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=kit.settings.cors_origin_list,
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type"],
        allow_credentials=False,
    )
    app.add_middleware(Surface, frame_ancestors=HF_FRAMERS if kit.settings.on_space else ())
    return app
