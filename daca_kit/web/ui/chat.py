"""The Chat tab: anyone may chat; a reply held for review appears by itself once a reviewer decides.

    view = ChatView(huggingface=False)                     # inside the caller's gr.Tabs
    view.wire(blocks, ChatHandlers(kit, watch, auth))      # after the layout, at the top of the gr.Blocks

The user id is bound to the browser: on its first visit the server issues a new id with a signed token
(daca_kit.web.identity), which the browser keeps; every event reads the id from that token, never from
what the page sends, so nobody can load another browser's history or write in its name. On a Space with
Hugging Face sign-in (`hf_oauth: true`), a signed-in visitor chats as `username@hf`.

A reply grows in its bubble while the model writes it (`daca_kit.web.ui.streaming`); a sensitive message
shows the waiting bubble instead, and its reply appears once a reviewer decided. The tab's timer runs only
while a turn waits for a reviewer (or the message count lags), and each tick reads a turn only after
`TurnWatch` heard that it ended. `chat` and `turn` are the API gradio_client calls.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import gradio as gr

from daca_kit.core.kit import Kit
from daca_kit.errors import BackendError, CountersError, DacaError, InputError, RateLimited
from daca_kit.web.auth import Auth
from daca_kit.web.identity import bound, hf_user_id
from daca_kit.web.ui.conversation import (
    apply_result,
    browser_state,
    chat_messages,
    expect_count,
    history_messages,
    stored_token,
    waiting_line,
)
from daca_kit.web.ui.handlers import PRIVATE, UNEXPECTED, readable_errors
from daca_kit.web.ui.streaming import streamed_turn
from daca_kit.web.ui.watch import TurnWatch

log = logging.getLogger(__name__)

HISTORY_LIMIT = 50
CHAT_TICK = 1.0


class ChatHandlers:
    """The functions behind the Chat tab's events, and the `chat` and `turn` API.

    handlers = ChatHandlers(kit, TurnWatch(kit), auth); handlers.api_chat("alice", "Hello")
    """

    def __init__(self, kit: Kit, watch: TurnWatch, auth: Auth, *, huggingface: bool = False) -> None:
        self.kit = kit
        self.watch = watch
        self.auth = auth
        self.huggingface = huggingface

    def visitor(self, request: gr.Request | None) -> str | None:
        """The caller's address for the per-visitor limits (None: the operator on this machine)."""
        peer = getattr(getattr(request, "client", None), "host", None)
        return self.auth.visitor(peer, dict(getattr(request, "headers", None) or {}))

    def identity(self, browser: Any, profile: gr.OAuthProfile | None) -> tuple[str, str]:
        """(user id, the browser's token): the Hugging Face user signed in, else the id the browser's token
        proves, else a new id with a new token (a first visit, or a token that does not verify)."""
        token = stored_token(browser)
        user_id = self.auth.users.user_of(token)
        if user_id is None or token is None:
            user_id, token = self.auth.users.issue()
        username = getattr(profile, "username", None) if self.huggingface else None
        if isinstance(username, str) and username:
            return hf_user_id(username), token
        return user_id, token

    def _count_text(self, session: dict[str, Any]) -> str:
        """The user's message count; stops re-reading once it includes the latest finished turn."""
        user_id = session.get("user_id")
        if not user_id:
            return ""
        try:
            count = self.kit.message_count(user_id)
        except CountersError as exc:
            log.warning("message count unavailable: %s", exc)
            session["count_checks"] = 0
            return (
                f"**Messages counted for `{user_id}`:** unavailable right now (the counters service is down)."
            )
        except DacaError:
            session["count_checks"] = 0
            return ""
        expected = session.get("expected_count")
        if expected is None or count >= expected:
            session["count_checks"] = 0
        return f"**Messages counted for `{user_id}`:** {count}"

    def _fresh_session(self, user_id: str) -> dict[str, Any]:
        """A session for `user_id` with its stored history (raises InputError for a bad id)."""
        rows = self.kit.conversations(user_id, HISTORY_LIMIT)
        return {"user_id": user_id, "history": history_messages(rows), "turns": [], "count_checks": 0}

    def _restore(self, session: dict[str, Any], browser: Any) -> None:
        """Turns this browser sent that were still waiting when the page closed."""
        stored = browser.get("pending") if isinstance(browser, dict) else None
        for item in stored or []:
            if not isinstance(item, dict) or item.get("user_id") != session["user_id"]:
                continue
            instance_id = str(item.get("id") or "")
            result = self.kit.turn(instance_id) if instance_id else None
            if result is None or result.user_id != session["user_id"] or result.status == "completed":
                continue  # unknown, someone else's, or already in the stored history
            turn = {"id": instance_id, "message": str(item.get("message") or ""), "status": "", "reply": None}
            apply_result(turn, result)
            if not result.finished:
                self.watch.track(instance_id)
            session["turns"].append(turn)

    def _chat_outputs(
        self, session: dict[str, Any], browser: Any, token: str, status: str | None = None
    ) -> tuple[Any, ...]:
        count = self._count_text(session)
        watching = (
            any(t["status"] == "pending_review" for t in session["turns"]) or session["count_checks"] > 0
        )
        return (
            chat_messages(session),
            waiting_line(session) if status is None else status,
            count,
            session,
            browser_state(browser, session, token),
            gr.Timer(active=watching),
        )

    # -- events --------------------------------------------------------------------------------
    @readable_errors
    def chat_load(
        self, browser: Any, session: dict[str, Any] | None, profile: gr.OAuthProfile | None
    ) -> tuple[Any, ...]:
        user_id, token = self.identity(browser, profile)
        if session and session.get("user_id") == user_id:
            return tuple(gr.skip() for _ in range(7))  # a message was sent before the page finished loading
        try:
            session = self._fresh_session(user_id)
        except DacaError as exc:
            session = {"user_id": user_id, "history": [], "turns": [], "count_checks": 0}
            return (
                user_id,
                [],
                f"**Not available:** {exc}",
                "",
                session,
                browser_state(browser, session, token),
                gr.Timer(active=False),
            )
        self._restore(session, browser)
        return (user_id, *self._chat_outputs(session, browser, token))

    def chat_send(
        self,
        _user_box: str,
        message: str,
        session: dict[str, Any] | None,
        browser: Any,
        profile: gr.OAuthProfile | None,
        request: gr.Request,
    ) -> Iterator[tuple[Any, ...]]:
        """Sends one message as the browser's user (never the id the page shows: a caller may send any);
        yields the chat with a progress bubble first, then the outcome."""
        user_id, token = self.identity(browser, profile)
        message = message or ""
        try:
            Kit.validate(user_id, message)
            if not session or session.get("user_id") != user_id:
                session = self._fresh_session(user_id)
                self._restore(session, browser)
        except DacaError as exc:
            gr.Warning(str(exc))
            yield (gr.skip(), gr.skip(), message, f"**Not sent:** {exc}", *(gr.skip() for _ in range(4)))
            return
        turn = {"id": "", "message": message, "status": "running", "reply": None}
        session["turns"].append(turn)
        yield (
            user_id,
            chat_messages(session),
            "",
            "Writing a reply…",
            gr.skip(),
            session,
            gr.skip(),
            gr.skip(),
        )

        status: str | None = None
        keep_text = ""
        try:
            result = yield from streamed_turn(
                self.kit,
                session,
                turn,
                user_id,
                message,
                client=self.visitor(request),
                frame=lambda messages: (gr.skip(), messages, *(gr.skip() for _ in range(6))),
            )
        except RateLimited as exc:
            session["turns"].remove(turn)
            keep_text, status = message, f"**Not sent:** {exc}"
            gr.Warning(str(exc))
        except InputError as exc:
            session["turns"].remove(turn)
            keep_text, status = message, f"**Not sent:** {exc}"
            gr.Warning(str(exc))
        except BackendError as exc:
            turn.update(status="error", reply=str(exc))
            status = f"**Not answered:** {exc}"
        except Exception:  # noqa: BLE001 - the user gets a sentence; the log gets the traceback
            log.exception("chat turn failed")
            turn.update(status="error", reply=UNEXPECTED)
            status = f"**Not answered:** {UNEXPECTED}"
        else:
            turn["id"] = result.instance_id
            apply_result(turn, result)
            if result.status == "failed":
                status = f"**Not answered:** {turn['reply']}"
            elif not result.finished:
                self.watch.track(result.instance_id)
            expect_count(session, result)
        outputs = self._chat_outputs(session, browser, token, status)
        yield (gr.skip(), outputs[0], keep_text, *outputs[1:])

    @readable_errors
    def chat_tick(
        self, session: dict[str, Any] | None, browser: Any, profile: gr.OAuthProfile | None
    ) -> tuple[Any, ...]:
        """Shows replies whose review was decided; re-reads a lagging message count."""
        user_id, token = self.identity(browser, profile)
        if not session or session.get("user_id") != user_id:
            return (*(gr.skip() for _ in range(5)), gr.Timer(active=False))
        changed = False
        for turn in session["turns"]:
            if turn["status"] != "pending_review":
                continue
            read, result = self.watch.check(turn["id"])
            if not read or (result is not None and not result.finished):
                continue
            changed = True
            if result is None:
                # Unknown to the runtime (its database was reset): say so rather than wait forever.
                turn.update(status="error", reply="this message is no longer known to the server.")
                continue
            apply_result(turn, result)
            expect_count(session, result)
        if session.get("count_checks", 0) > 0:
            session["count_checks"] -= 1
            changed = True
        if not changed:
            return (*(gr.skip() for _ in range(5)), gr.skip())
        return self._chat_outputs(session, browser, token)

    # -- API (gradio_client) -------------------------------------------------------------------
    @readable_errors
    def api_chat(self, user_id: str, text: str, request: gr.Request) -> dict[str, Any]:
        """Sends `text` as `user_id`; an id issued by the app (`...@daca`, from POST /users) or a Hugging Face
        user's (`...@hf`) needs its token in the `Authorization: Bearer` header (gradio_client's `headers=`).
        Returns status (completed, pending_review, rejected, failed), reply and instance_id; a reply held for
        review arrives later from the `turn` endpoint."""
        scheme, _, token = str((getattr(request, "headers", None) or {}).get("authorization", "")).partition(
            " "
        )
        token = token.strip() if scheme.lower() == "bearer" else ""
        if isinstance(user_id, str) and bound(user_id) and self.auth.users.user_of(token) != user_id:
            raise gr.Error(
                f"The user id '{user_id}' belongs to someone: send its token (POST /users gives a new id with "
                "its token).",
                print_exception=False,
            )
        return self.kit.submit(user_id, text, client=self.visitor(request)).status_body()

    @readable_errors
    def api_turn(self, instance_id: str) -> dict[str, Any]:
        """Where a chat turn stands: status and, once decided, the reply."""
        result = self.kit.turn(instance_id) if isinstance(instance_id, str) and instance_id else None
        if result is None:
            raise gr.Error(f"No chat turn with id '{instance_id}'.", print_exception=False)
        return result.status_body()


class ChatView:
    """The Chat tab's components, laid out on construction; `wire` connects them to the handlers.

    with gr.Tabs(): view = ChatView(huggingface=False)
    view.wire(blocks, handlers)
    """

    def __init__(self, *, huggingface: bool = False) -> None:
        """Adds the tab and its components to the gr.Tabs being built; `huggingface` adds the sign-in."""
        with gr.Tab("Chat", id="chat"):
            # Gradio sends this key to the browser anyway; a fixed one keeps the id across restarts. The
            # identity in it is only as good as its token's signature, checked on every event.
            self.browser = gr.BrowserState(
                {"user_id": None, "token": None, "pending": []},
                storage_key="daca-kit-chat",
                secret="daca-kit-chat-v1",
            )
            self.session = gr.State(None)
            self.timer = gr.Timer(CHAT_TICK, active=False)
            with gr.Row():
                self.user_box = gr.Textbox(
                    label="Your user id",
                    info="Given to this browser and kept in it: your history is shown only here"
                    + (", or wherever you sign in with Hugging Face." if huggingface else "."),
                    max_lines=1,
                    scale=3,
                    interactive=False,
                    elem_id="chat-user",
                )
                if huggingface:
                    gr.LoginButton(elem_id="chat-hf-login")
                self.count_md = gr.Markdown(elem_classes=["daca-status"], elem_id="chat-count")
            self.chatbot = gr.Chatbot(
                label="Conversation",
                height=460,
                placeholder="Your conversation appears here.",
                buttons=["copy", "copy_all"],
                elem_id="chatbot",
            )
            self.status_md = gr.Markdown(elem_classes=["daca-status"], elem_id="chat-status")
            with gr.Row():
                self.message_box = gr.Textbox(
                    label="Message",
                    placeholder="Type a message and press Enter",
                    max_lines=6,
                    scale=5,
                    autofocus=True,
                    elem_id="chat-message",
                )
                self.send_btn = gr.Button("Send", variant="primary", scale=1, elem_id="chat-send")
            gr.Examples(
                [["Hello! What can you do?"], ["This is an urgent request!"]],
                inputs=[self.message_box],
                label="Try",
            )

    def wire(self, blocks: gr.Blocks, handlers: ChatHandlers) -> None:
        """The tab's events, and the API; called outside the tabs, as gr.api adds components where it runs."""
        chat_outputs = [self.chatbot, self.status_md, self.count_md, self.session, self.browser, self.timer]
        blocks.load(
            handlers.chat_load,
            inputs=[self.browser, self.session],
            outputs=[self.user_box, *chat_outputs],
            api_visibility="private",
            show_progress="hidden",
            concurrency_limit=None,
        )
        gr.on(
            [self.message_box.submit, self.send_btn.click],
            handlers.chat_send,
            inputs=[self.user_box, self.message_box, self.session, self.browser],
            outputs=[
                self.user_box,
                self.chatbot,
                self.message_box,
                self.status_md,
                self.count_md,
                self.session,
                self.browser,
                self.timer,
            ],
            show_progress="minimal",
            concurrency_limit=32,
            api_visibility="private",
        )
        gr.api(handlers.api_chat, api_name="chat", concurrency_limit=32)
        gr.api(handlers.api_turn, api_name="turn", concurrency_limit=None)
        self.timer.tick(
            handlers.chat_tick,
            inputs=[self.session, self.browser],
            outputs=chat_outputs,
            show_progress="hidden",
            concurrency_limit=None,
            **PRIVATE,
        )
