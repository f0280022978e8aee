"""What every response of the app carries and what no path accepts, on the REST API and the Gradio UI alike.

    app.add_middleware(Surface, frame_ancestors=("https://huggingface.co",))   # create_api does this

- Security headers: `X-Content-Type-Options: nosniff`, `Referrer-Policy: same-origin`, and who may frame the
  app (`Content-Security-Policy: frame-ancestors`): this origin only, plus Hugging Face's pages on a Space,
  which show the app in a frame (there `X-Frame-Options`, which cannot name another origin, is left out).
- No uploads: the app takes no files, so Gradio's upload routes answer 403 and nothing reaches the disk.
- A call that Gradio cannot run (an unknown function, a malformed body) is one log line and a 500 with a
  sentence, not a traceback per request that anyone can trigger.

Cross-origin calls are governed by Starlette's CORSMiddleware (DACA_CORS_ORIGINS, none by default), which
also stops Gradio from echoing any Origin with credentials.
"""

from __future__ import annotations

import json
import logging

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

UPLOAD_PATHS = ("/gradio_api/upload", "/gradio_api/process_recording", "/gradio_api/stream/")
GRADIO_PATHS = ("/gradio_api/", "/config", "/monitoring")
HF_FRAMERS = ("https://huggingface.co", "https://*.huggingface.co")


class Surface:
    """ASGI middleware for the whole app; see the module docstring."""

    def __init__(self, app: ASGIApp, *, frame_ancestors: tuple[str, ...] = ()) -> None:
        self.app = app
        ancestors = " ".join(("'self'", *frame_ancestors))
        self.headers = {
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            "Content-Security-Policy": f"frame-ancestors {ancestors}",
        }
        if not frame_ancestors:
            self.headers["X-Frame-Options"] = "SAMEORIGIN"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        if scope["method"] == "POST" and path.startswith(UPLOAD_PATHS):
            await answer(send_with_headers, 403, "This app takes no files: uploads are refused.")
            return
        if not path.startswith(GRADIO_PATHS):
            await self.app(scope, receive, send_with_headers)
            return
        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as exc:  # noqa: BLE001 - a caller's bad call: one line, no traceback to flood the log
            log.warning("%s %s failed: %s", scope["method"], path[:100], type(exc).__name__)
            if not started:
                await answer(
                    send_with_headers, 500, "The call could not be run; check the function and its data."
                )


async def answer(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})
