"""A local HTTP server that answers the Hugging Face Hub's `GET /api/whoami-v2` for one user.

Gradio's local OAuth mock (what `gr.LoginButton` does outside a Space) asks the Hub who this machine's
token belongs to, once, when the app starts. Pointing `HF_ENDPOINT` at this stub lets the app start
offline and sign the browser in as `user`.

    with HubStub(user="hf-alice") as hub:
        env = {"HF_ENDPOINT": hub.url, "HF_TOKEN": "hf_local_test_token"}
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class HubStub:
    """whoami-v2 for one user; every request path is kept in `requests`."""

    def __init__(self, user: str, fullname: str = "Test User") -> None:
        self.user, self.fullname = user, fullname
        self.requests: list[str] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                stub.requests.append(self.path)
                if self.path.split("?")[0] != "/api/whoami-v2":
                    self.send_error(404)
                    return
                body = json.dumps(
                    {
                        "type": "user",
                        "name": stub.user,
                        "fullname": stub.fullname,
                        "avatarUrl": "/avatars/default.svg",
                        "orgs": [],
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="hub-stub", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> HubStub:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
