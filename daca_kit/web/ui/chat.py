"""The Chat tab: anyone may chat; a reply held for review appears by itself once a reviewer decides.

    view = ChatView()                                # inside the caller's gr.Tabs
    view.wire(blocks, ChatHandlers(kit, watch))      # after the layout, at the top of the gr.Blocks

The tab's timer runs only while a turn waits for a reviewer (or the message count lags), and each tick
reads a turn only after `TurnWatch` heard that it ended. `chat` and `turn` are the API gradio_client calls.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import gradio as gr

from daca_kit.core.kit import Kit
from daca_kit.errors import BackendError, CountersError, DacaError, InputError, RateLimited
from daca_kit.web.ui.conversation import (
    apply_result,
    browser_state,
    chat_messages,
    expect_count,
    history_messages,
    new_guest_id,
    stored_user,
    waiting_line,
)
from daca_kit.web.ui.handlers import PRIVATE, UNEXPECTED, readable_errors
from daca_kit.web.ui.watch import TurnWatch

log = logging.getLogger(__name__)

HISTORY_LIMIT = 50
CHAT_TICK = 1.0


class ChatHandlers:
    """The functions behind the Chat tab's events, and the `chat` and `turn` API.

    handlers = ChatHandlers(kit, TurnWatch(kit)); handlers.api_chat("alice", "Hello")
    """

    def __init__(self, kit: Kit, watch: TurnWatch) -> None:
        self.kit = kit
        self.watch = watch

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
        self, session: dict[str, Any], browser: Any, status: str | None = None
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
            browser_state(browser, session),
            gr.Timer(active=watching),
        )

    # -- events --------------------------------------------------------------------------------
    @readable_errors
    def chat_load(self, browser: Any, session: dict[str, Any] | None) -> tuple[Any, ...]:
        if session and session.get("user_id"):
            return tuple(gr.skip() for _ in range(7))  # a message was sent before the page finished loading
        user_id = stored_user(browser) or new_guest_id()
        try:
            session = self._fresh_session(user_id)
        except InputError:
            user_id = new_guest_id()
            session = self._fresh_session(user_id)
        except DacaError as exc:
            return (
                user_id,
                [],
                f"**Not available:** {exc}",
                "",
                {"user_id": user_id, "history": [], "turns": [], "count_checks": 0},
                browser,
                gr.Timer(active=False),
            )
        self._restore(session, browser)
        return (user_id, *self._chat_outputs(session, browser))

    @readable_errors
    def chat_switch(self, user_id: str, session: dict[str, Any] | None, browser: Any) -> tuple[Any, ...]:
        user_id = (user_id or "").strip()
        if session and session.get("user_id") == user_id:
            return tuple(gr.skip() for _ in range(7))
        try:
            session = self._fresh_session(user_id)
        except InputError as exc:
            gr.Warning(f"That user id cannot be used: {exc}")
            old = (session or {}).get("user_id") or ""
            return (old, *(gr.skip() for _ in range(6)))
        except DacaError as exc:
            gr.Warning(str(exc))
            return tuple(gr.skip() for _ in range(7))
        self._restore(session, browser)
        return (user_id, *self._chat_outputs(session, browser))

    def chat_send(
        self, user_id: str, message: str, session: dict[str, Any] | None, browser: Any
    ) -> Iterator[tuple[Any, ...]]:
        """Sends one message; yields the chat with a progress bubble first, then the outcome."""
        # An empty id box means the page is still loading: use the id it is about to show.
        user_id = (
            (user_id or "").strip()
            or (session or {}).get("user_id")
            or stored_user(browser)
            or new_guest_id()
        )
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
            result = self.kit.submit(user_id, message)
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
        outputs = self._chat_outputs(session, browser, status)
        yield (gr.skip(), outputs[0], keep_text, *outputs[1:])

    @readable_errors
    def chat_tick(self, session: dict[str, Any] | None, browser: Any) -> tuple[Any, ...]:
        """Shows replies whose review was decided; re-reads a lagging message count."""
        if not session or not session.get("user_id"):
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
        return self._chat_outputs(session, browser)

    # -- API (gradio_client) -------------------------------------------------------------------
    @readable_errors
    def api_chat(self, user_id: str, text: str) -> dict[str, Any]:
        """Sends `text` as `user_id`. Returns status (completed, pending_review, rejected, failed), reply and
        instance_id; a reply held for review arrives later from the `turn` endpoint."""
        return self.kit.submit(user_id, text).status_body()

    @readable_errors
    def api_turn(self, instance_id: str) -> dict[str, Any]:
        """Where a chat turn stands: status and, once decided, the reply."""
        result = self.kit.turn(instance_id) if isinstance(instance_id, str) and instance_id else None
        if result is None:
            raise gr.Error(f"No chat turn with id '{instance_id}'.", print_exception=False)
        return result.status_body()


class ChatView:
    """The Chat tab's components, laid out on construction; `wire` connects them to the handlers.

    with gr.Tabs(): view = ChatView()
    view.wire(blocks, handlers)
    """

    def __init__(self) -> None:
        """Adds the tab and its components to the gr.Tabs being built."""
        with gr.Tab("Chat", id="chat"):
            # Gradio sends this key to the browser anyway; a fixed one keeps the id across restarts.
            self.browser = gr.BrowserState(
                {"user_id": None, "pending": []},
                storage_key="daca-kit-chat",
                secret="daca-kit-chat-v1",
            )
            self.session = gr.State(None)
            self.timer = gr.Timer(CHAT_TICK, active=False)
            with gr.Row():
                self.user_box = gr.Textbox(
                    label="Your user id",
                    info="Kept in this browser. Change it and press Enter to continue as someone else.",
                    max_lines=1,
                    scale=3,
                    elem_id="chat-user",
                )
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
            [self.user_box.submit, self.user_box.blur],
            handlers.chat_switch,
            inputs=[self.user_box, self.session, self.browser],
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
