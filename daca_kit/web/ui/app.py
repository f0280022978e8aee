"""The Gradio UI: Chat, Review and Usage tabs, mounted at "/" on the REST API's FastAPI app.

    api = mount_ui(create_api(kit, auth=auth), kit, auth)    # what daca_kit.web.server.build_app does

Chat is open to anyone; a held reply appears by itself once a reviewer decides (a `gr.Timer` reads
the turn only after the runtime reported that it ended, so a pending review costs no backend calls).
Review needs the reviewer password: login issues a token kept server-side in the session's `gr.State`,
and every review function checks it, so calling those functions through Gradio's HTTP API without
logging in is refused (they are also left out of the API docs). No secret setting is ever displayed.
"""

from __future__ import annotations

import functools
import logging
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import gradio as gr
import pandas as pd
from fastapi import FastAPI

from daca_kit.core.kit import Kit
from daca_kit.core.models import TurnResult
from daca_kit.errors import (
    AlreadyDecided,
    BackendError,
    CountersError,
    DacaError,
    InputError,
    NotFound,
    RateLimited,
)
from daca_kit.web.auth import REVIEWER, Auth

log = logging.getLogger(__name__)

HISTORY_LIMIT = 50
REVIEW_HISTORY_LIMIT = 6
CHAT_TICK = 1.0
REVIEW_TICK = 2.0
WAITING_TITLE = "Waiting for a human reviewer"
WAITING_TEXT = (
    "Your message mentions a sensitive topic, so a person reads the reply before you get it. "
    "It will appear here by itself; you can keep chatting meanwhile."
)
WRITING_TITLE = "Writing a reply…"
LOGIN_FIRST = "Log in as a reviewer first: the Review tab asks for the reviewer password."
UNEXPECTED = "Something went wrong on the server; the details are in its log. Please try again."
PARTS = {
    "model": "Reply model",
    "database": "Conversations and reviews",
    "counters": "Message counters",
    "events": "Event bus",
    "workflow": "Workflow runtime",
}
CSS = """
.daca-status p { margin: 0; }
.daca-note { font-size: var(--text-sm); opacity: 0.85; }
"""


def waiting_text(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 1:
        return "under a minute"
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} days"


def short_time(value: str | None) -> str:
    if not value:
        return ""
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return value


def clip(text: str | None, limit: int = 120) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class TurnWatch:
    """Which chat turns ended, learnt from the runtime's change notices.

        watch = TurnWatch(kit); watch.track(instance_id); result = watch.check(instance_id)

    `check` reads the turn only once the runtime said it ended, or every `fallback` seconds (a decision
    taken by another process is not announced here), so UI timers mostly read memory. `generation` grows
    with every change, which tells the Review tab when to re-read its lists.
    """

    def __init__(
        self,
        kit: Kit,
        *,
        fallback: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kit = kit
        self.fallback = fallback
        self.clock = clock
        self.generation = 0
        self._ended: OrderedDict[str, None] = OrderedDict()
        self._read_at: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()
        kit.on_change(self._changed)

    def _changed(self, state: Any) -> None:
        with self._lock:
            self.generation += 1
            if state.is_terminal:
                self._ended[state.instance_id] = None
                while len(self._ended) > 10_000:
                    self._ended.popitem(last=False)

    def track(self, instance_id: str) -> None:
        with self._lock:
            self._read_at[instance_id] = self.clock()
            while len(self._read_at) > 10_000:
                self._read_at.popitem(last=False)

    def check(self, instance_id: str) -> tuple[bool, TurnResult | None]:
        """(True, the turn as it stands or None if unknown) when it may have changed, else (False, None)."""
        now = self.clock()
        with self._lock:
            ended = instance_id in self._ended
            last = self._read_at.get(instance_id)
            if not ended and last is not None and now - last < self.fallback:
                return False, None
            self._read_at[instance_id] = now
        result = self.kit.turn(instance_id)
        if result is None or result.finished:
            with self._lock:
                self._read_at.pop(instance_id, None)
                self._ended.pop(instance_id, None)
        return True, result


class ReviewerSessions:
    """Reviewer logins: tokens issued on a correct password, kept server-side, valid for `ttl` seconds.

        token = sessions.login(password, host)   # None when refused; sessions.valid(token) -> bool

    Failed logins are limited per client address (`max_failures` per `window` seconds).
    """

    def __init__(
        self,
        auth: Auth,
        *,
        ttl: float = 12 * 3600,
        max_failures: int = 10,
        window: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.auth = auth
        self.ttl = ttl
        self.max_failures = max_failures
        self.window = window
        self.clock = clock
        self._tokens: dict[str, float] = {}
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def blocked(self, host: str) -> bool:
        now = self.clock()
        with self._lock:
            recent = self._failures.get(host)
            if recent is None:
                return False
            while recent and now - recent[0] > self.window:
                recent.popleft()
            return len(recent) >= self.max_failures

    def login(self, password: str, host: str) -> str | None:
        if self.blocked(host):
            return None
        if not self.auth.check_reviewer(REVIEWER, str(password or "")):
            with self._lock:
                self._failures.setdefault(host, deque()).append(self.clock())
                if len(self._failures) > 10_000:
                    self._failures.pop(next(iter(self._failures)))
            return None
        token = secrets.token_urlsafe(24)
        now = self.clock()
        with self._lock:
            self._tokens = {t: exp for t, exp in self._tokens.items() if exp > now}
            self._tokens[token] = now + self.ttl
        return token

    def valid(self, token: Any) -> bool:
        if not isinstance(token, str) or not token:
            return False
        with self._lock:
            expires = self._tokens.get(token)
        return expires is not None and expires > self.clock()

    def logout(self, token: Any) -> None:
        with self._lock:
            self._tokens.pop(token, None)


def readable_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turns the kit's errors into the sentence they carry, and anything else into a generic one (logged)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except DacaError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except Exception:  # noqa: BLE001 - the page gets a sentence; the log gets the traceback
            log.exception("%s failed", fn.__name__)
            raise gr.Error(UNEXPECTED, print_exception=False) from None

    return wrapper


def _client_host(request: gr.Request | None) -> str:
    client = getattr(request, "client", None)
    return str(getattr(client, "host", None) or "unknown")


# -- chat rendering -----------------------------------------------------------------------------
def history_messages(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored turns (newest first, as `kit.conversations` returns them) as chat messages, oldest first."""
    messages: list[dict[str, Any]] = []
    for row in reversed(rows):
        messages.append({"role": "user", "content": row["message"]})
        messages.append({"role": "assistant", "content": row["reply"]})
    return messages


def turn_messages(turn: dict[str, Any]) -> list[dict[str, Any]]:
    user = {"role": "user", "content": turn["message"]}
    status = turn["status"]
    if status == "running":
        reply: dict[str, Any] = {
            "role": "assistant",
            "content": "",
            "metadata": {"title": WRITING_TITLE, "status": "pending"},
        }
    elif status == "pending_review":
        # Plain text rather than a collapsible "thought": the explanation must stay in view.
        reply = {"role": "assistant", "content": f"**{WAITING_TITLE}.** {WAITING_TEXT}"}
    elif status == "error":
        reply = {"role": "assistant", "content": f"Not answered: {turn['reply']}"}
    else:
        reply = {"role": "assistant", "content": turn["reply"] or ""}
    return [user, reply]


def chat_messages(session: dict[str, Any]) -> list[dict[str, Any]]:
    messages = list(session.get("history") or [])
    for turn in session.get("turns") or []:
        messages.extend(turn_messages(turn))
    return messages


def waiting_line(session: dict[str, Any]) -> str:
    waiting = sum(1 for t in session.get("turns") or [] if t["status"] == "pending_review")
    if not waiting:
        return ""
    noun = "message is" if waiting == 1 else "messages are"
    return f"**{waiting} {noun} waiting for a human reviewer.** The reply appears here by itself, no need to reload."


def new_guest_id() -> str:
    return f"guest-{secrets.token_hex(3)}"


class _Ui:
    """The handlers behind the tabs; `build()` wires them into a gr.Blocks."""

    def __init__(self, kit: Kit, auth: Auth) -> None:
        self.kit = kit
        self.auth = auth
        self.watch = TurnWatch(kit)
        self.sessions = ReviewerSessions(auth)

    # -- chat: helpers ------------------------------------------------------------------------
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

    def _expect_count(self, session: dict[str, Any], result: TurnResult) -> None:
        """The counter is updated by an event consumer: after a stored turn, look again if it lags."""
        if result.status == "completed" and result.message_count is not None:
            session["expected_count"] = result.message_count + 1
            session["count_checks"] = 3

    @staticmethod
    def _stored_user(browser: Any) -> str | None:
        stored = browser.get("user_id") if isinstance(browser, dict) else None
        return stored if isinstance(stored, str) and stored else None

    def _fresh_session(self, user_id: str) -> dict[str, Any]:
        """A session for `user_id` with its stored history (raises InputError for a bad id)."""
        rows = self.kit.conversations(user_id, HISTORY_LIMIT)
        return {"user_id": user_id, "history": history_messages(rows), "turns": [], "count_checks": 0}

    @staticmethod
    def _browser(browser: Any, session: dict[str, Any]) -> dict[str, Any]:
        """What the browser keeps: the user id and the turns still waiting (with their text, to show them)."""
        previous = browser if isinstance(browser, dict) else {}
        others = [
            p
            for p in previous.get("pending") or []
            if isinstance(p, dict) and p.get("user_id") != session["user_id"]
        ]
        mine = [
            {"id": t["id"], "user_id": session["user_id"], "message": t["message"]}
            for t in session["turns"]
            if t["status"] == "pending_review"
        ]
        return {"user_id": session["user_id"], "pending": (others + mine)[-20:]}

    def _apply(self, turn: dict[str, Any], result: TurnResult) -> None:
        turn["status"] = result.status
        if result.status == "failed":
            turn["status"] = "error"
            turn["reply"] = result.error or "the reply could not be generated."
        else:
            turn["reply"] = result.reply

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
            self._apply(turn, result)
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
            self._browser(browser, session),
            gr.Timer(active=watching),
        )

    # -- chat: handlers -----------------------------------------------------------------------
    @readable_errors
    def chat_load(self, browser: Any, session: dict[str, Any] | None) -> tuple[Any, ...]:
        if session and session.get("user_id"):
            return tuple(gr.skip() for _ in range(7))  # a message was sent before the page finished loading
        user_id = self._stored_user(browser) or new_guest_id()
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
            or self._stored_user(browser)
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
            self._apply(turn, result)
            if result.status == "failed":
                status = f"**Not answered:** {turn['reply']}"
            elif not result.finished:
                self.watch.track(result.instance_id)
            self._expect_count(session, result)
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
            self._apply(turn, result)
            self._expect_count(session, result)
        if session.get("count_checks", 0) > 0:
            session["count_checks"] -= 1
            changed = True
        if not changed:
            return (*(gr.skip() for _ in range(5)), gr.skip())
        return self._chat_outputs(session, browser)

    # -- chat: API (gradio_client) ------------------------------------------------------------
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

    # -- review -------------------------------------------------------------------------------
    def _require(self, token: Any) -> None:
        if not self.sessions.valid(token):
            raise gr.Error(LOGIN_FIRST, print_exception=False)

    def _review_lists(self, state: dict[str, Any]) -> tuple[Any, Any]:
        now = time.monotonic()
        if state.get("generation") != self.watch.generation or now - state.get("read_at", 0.0) > 30:
            state["generation"] = self.watch.generation
            state["rows"] = self.kit.pending_reviews()
            state["audit"] = self.kit.decided_reviews()
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

    @readable_errors
    def review_login(self, password: str, request: gr.Request) -> tuple[Any, ...]:
        host = _client_host(request)
        if self.sessions.blocked(host):
            gr.Warning("Too many wrong passwords from this address: wait a few minutes and try again.")
            return (None, "", *(gr.skip() for _ in range(6)))
        token = self.sessions.login(password, host)
        if token is None:
            gr.Warning("Wrong reviewer password.", duration=5)
            return (None, "", *(gr.skip() for _ in range(6)))
        state: dict[str, Any] = {}
        pending, audit = self._tables(state)
        return (
            token,
            "",
            gr.Column(visible=False),
            gr.Column(visible=True),
            pending,
            audit,
            state,
            gr.Timer(active=True),
        )

    @readable_errors
    def review_logout(self, token: Any) -> tuple[Any, ...]:
        self.sessions.logout(token)
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
    def review_tick(self, token: Any, state: dict[str, Any] | None) -> tuple[Any, ...]:
        if token is not None and not self.sessions.valid(token):
            gr.Warning("Your reviewer session ended: log in again.")
            return self.review_logout(token)[:7]
        self._require(token)
        state = state if isinstance(state, dict) else {}
        pending, audit = self._tables(state)
        return (gr.skip(), gr.skip(), gr.skip(), pending, audit, state, gr.skip())

    @readable_errors
    def review_select(self, token: Any, state: dict[str, Any] | None, evt: gr.SelectData) -> tuple[Any, ...]:
        self._require(token)
        rows = (state or {}).get("rows") or []
        index = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
        if not isinstance(index, int) or not 0 <= index < len(rows):
            return (*(gr.skip() for _ in range(7)),)
        return self._details(rows[index]["instance_id"])

    def _details(self, instance_id: str) -> tuple[Any, ...]:
        try:
            review = self.kit.review(instance_id)
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
    ) -> tuple[Any, ...]:
        self._require(token)
        state = state if isinstance(state, dict) else {}
        if not instance_id:
            gr.Warning("Select a message in the table first.")
            return tuple(gr.skip() for _ in range(7))
        try:
            review = self.kit.review(instance_id)
            edited = (
                reply
                if approved and (reply or "").strip() and reply.strip() != review["proposed_reply"].strip()
                else None
            )
            self.kit.decide(
                instance_id,
                approved=approved,
                reply=edited,
                reason=(reason or "").strip() or None,
                reviewer=REVIEWER,
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

    @readable_errors
    def review_approve(
        self, token: Any, instance_id: Any, reply: str, reason: str, state: dict[str, Any] | None
    ) -> tuple[Any, ...]:
        return self.review_decide(True, token, instance_id, reply, reason, state)

    @readable_errors
    def review_reject(
        self, token: Any, instance_id: Any, reply: str, reason: str, state: dict[str, Any] | None
    ) -> tuple[Any, ...]:
        return self.review_decide(False, token, instance_id, reply, reason, state)

    # -- usage --------------------------------------------------------------------------------
    @readable_errors
    def usage(self, token: Any) -> tuple[Any, ...]:
        backends = self.kit.backends
        backend_table = pd.DataFrame(
            [[name, backends[key].description] for key, name in PARTS.items()],
            columns=["Part", "Runs on"],
        )
        report = self.kit.usage()
        rows = report["services"]
        meter = pd.DataFrame(
            [
                [
                    PARTS.get(r["service"], r["service"]),
                    backends[r["service"]].description,
                    r["free_tier"] or "none (embedded)",
                    f"{r['used']:g} {r['unit'][:-1] if r['used'] == 1 else r['unit']}",
                    f"{r['per_turn']:g}",
                    "" if r["quota_per_day"] is None else f"{r['quota_per_day']:,}",
                    "" if r["percent_of_daily_quota"] is None else f"{r['percent_of_daily_quota']:g} %",
                    "" if r["turns_per_day"] is None else f"{r['turns_per_day']:,}",
                ]
                for r in rows
            ],
            columns=METER_COLUMNS,
        )
        chart = pd.DataFrame(
            {
                "part": [PARTS.get(r["service"], r["service"]) for r in rows],
                "calls": [float(r["used"]) for r in rows],
                "quota": ["free tier" if r["free_tier"] else "embedded (no quota)" for r in rows],
            }
        )
        limit = report["sustainable_turns_per_day"]
        note = f"{report['note']} Turns completed since start: {report['turns_completed']}."
        if limit is not None:
            note = f"**About {limit:,} chat turns a day fit in the free tiers.** " + note
        try:
            counts = self.kit.all_counts()
        except CountersError as exc:
            log.warning("message counts unavailable: %s", exc)
            counts_md = "Message counts are unavailable right now (the counters service is down)."
            counts_df: Any = pd.DataFrame([], columns=["User", "Messages"])
        else:
            total = sum(counts.values())
            counts_md = f"{len(counts)} user(s) have sent {total} message(s)."
            if self.sessions.valid(token):
                ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
                counts_df = pd.DataFrame([[u, c] for u, c in ordered], columns=["User", "Messages"])
            else:
                counts_md += " Log in on the Review tab to see the count of each user."
                counts_df = pd.DataFrame([], columns=["User", "Messages"])
        return (
            backend_table,
            meter,
            chart,
            note,
            counts_md,
            gr.Dataframe(value=counts_df, visible=self.sessions.valid(token)),
        )

    # -- layout -------------------------------------------------------------------------------
    def build(self) -> gr.Blocks:
        keywords = ", ".join(f"*{k}*" for k in self.kit.settings.keywords) or "none"
        private: dict[str, Any] = {"api_visibility": "private", "queue": True}
        with gr.Blocks(title="daca_kit chat", analytics_enabled=False) as blocks:
            gr.Markdown(
                "# daca_kit chat\nChat with the assistant. Messages that mention "
                f"{keywords} wait for a human reviewer before you get the reply."
            )
            for warning in self.kit.warnings():
                gr.Markdown(f"ℹ {warning}", elem_classes=["daca-note"])
            token = gr.State(None)
            with gr.Tabs():
                with gr.Tab("Chat", id="chat"):
                    # Gradio sends this key to the browser anyway; a fixed one keeps the id across restarts.
                    browser = gr.BrowserState(
                        {"user_id": None, "pending": []},
                        storage_key="daca-kit-chat",
                        secret="daca-kit-chat-v1",
                    )
                    session = gr.State(None)
                    chat_timer = gr.Timer(CHAT_TICK, active=False)
                    with gr.Row():
                        user_box = gr.Textbox(
                            label="Your user id",
                            info="Kept in this browser. Change it and press Enter to continue as someone else.",
                            max_lines=1,
                            scale=3,
                            elem_id="chat-user",
                        )
                        count_md = gr.Markdown(elem_classes=["daca-status"], elem_id="chat-count")
                    chatbot = gr.Chatbot(
                        label="Conversation",
                        height=460,
                        placeholder="Your conversation appears here.",
                        buttons=["copy", "copy_all"],
                        elem_id="chatbot",
                    )
                    status_md = gr.Markdown(elem_classes=["daca-status"], elem_id="chat-status")
                    with gr.Row():
                        message_box = gr.Textbox(
                            label="Message",
                            placeholder="Type a message and press Enter",
                            max_lines=6,
                            scale=5,
                            autofocus=True,
                            elem_id="chat-message",
                        )
                        send_btn = gr.Button("Send", variant="primary", scale=1, elem_id="chat-send")
                    gr.Examples(
                        [["Hello! What can you do?"], ["This is an urgent request!"]],
                        inputs=[message_box],
                        label="Try",
                    )
                with gr.Tab("Review", id="review"):
                    with gr.Column(visible=True) as login_box:
                        gr.Markdown(
                            "Reviewers only: log in as user `reviewer` with `DACA_REVIEWER_PASSWORD`."
                        )
                        password = gr.Textbox(
                            label="Reviewer password", type="password", max_lines=1, elem_id="review-password"
                        )
                        login_btn = gr.Button("Log in", variant="primary", elem_id="review-login")
                    with gr.Column(visible=False) as review_box:
                        review_state = gr.State({})
                        selected = gr.State(None)
                        review_timer = gr.Timer(REVIEW_TICK, active=False)
                        with gr.Row():
                            gr.Markdown(
                                "### Waiting for a decision (oldest first)\nClick a row to read it and decide."
                            )
                            logout_btn = gr.Button("Log out", size="sm", scale=0)
                        pending_df = gr.Dataframe(
                            pd.DataFrame([], columns=PENDING_COLUMNS),
                            interactive=False,
                            wrap=True,
                            max_height=320,
                            label="Pending reviews",
                            elem_id="review-pending",
                        )
                        with gr.Column(visible=False) as detail_box:
                            detail_md = gr.Markdown()
                            with gr.Row():
                                with gr.Column():
                                    message_view = gr.Textbox(label="Message", interactive=False, lines=3)
                                    proposed_view = gr.Textbox(
                                        label="Proposed reply", interactive=False, lines=4
                                    )
                                    reply_edit = gr.Textbox(
                                        label="Reply to send (edit it if needed)",
                                        lines=4,
                                        max_lines=12,
                                        elem_id="review-reply",
                                    )
                                    reason_box = gr.Textbox(
                                        label="Reason for rejecting (optional)", max_lines=2
                                    )
                                    with gr.Row():
                                        approve_btn = gr.Button(
                                            "Approve and send", variant="primary", elem_id="review-approve"
                                        )
                                        reject_btn = gr.Button(
                                            "Reject", variant="stop", elem_id="review-reject"
                                        )
                                history_view = gr.Chatbot(
                                    label="This user's recent history",
                                    height=380,
                                    render_markdown=False,
                                    buttons=["copy_all"],
                                )
                        gr.Markdown("### Decisions (audit trail, newest first)")
                        audit_df = gr.Dataframe(
                            pd.DataFrame([], columns=AUDIT_COLUMNS),
                            interactive=False,
                            wrap=True,
                            max_height=320,
                            label="Decided reviews",
                            elem_id="review-audit",
                        )
                with gr.Tab("Usage", id="usage") as usage_tab:
                    usage_note = gr.Markdown(elem_id="usage-note")
                    with gr.Row():
                        backends_df = gr.Dataframe(
                            pd.DataFrame([], columns=["Part", "Runs on"]),
                            interactive=False,
                            label="Where each part runs",
                        )
                        with gr.Column():
                            counts_md = gr.Markdown()
                            counts_df = gr.Dataframe(
                                pd.DataFrame([], columns=["User", "Messages"]),
                                interactive=False,
                                label="Messages per user",
                                visible=False,
                                max_height=300,
                            )
                    meter_df = gr.Dataframe(
                        pd.DataFrame([], columns=METER_COLUMNS),
                        interactive=False,
                        wrap=True,
                        label="Free-tier meter: backend calls so far against each service's free quota",
                    )
                    chart = gr.BarPlot(
                        None,
                        x="part",
                        y="calls",
                        color="quota",
                        title="Backend calls so far",
                        x_title="part",
                        y_title="calls",
                        height=280,
                    )
                    usage_btn = gr.Button("Refresh", size="sm")

            # -- chat events
            chat_outputs = [chatbot, status_md, count_md, session, browser, chat_timer]
            blocks.load(
                self.chat_load,
                inputs=[browser, session],
                outputs=[user_box, *chat_outputs],
                api_visibility="private",
                show_progress="hidden",
                concurrency_limit=None,
            )
            gr.on(
                [user_box.submit, user_box.blur],
                self.chat_switch,
                inputs=[user_box, session, browser],
                outputs=[user_box, *chat_outputs],
                api_visibility="private",
                show_progress="hidden",
                concurrency_limit=None,
            )
            gr.on(
                [message_box.submit, send_btn.click],
                self.chat_send,
                inputs=[user_box, message_box, session, browser],
                outputs=[user_box, chatbot, message_box, status_md, count_md, session, browser, chat_timer],
                show_progress="minimal",
                concurrency_limit=32,
                api_visibility="private",
            )
            gr.api(self.api_chat, api_name="chat", concurrency_limit=32)
            gr.api(self.api_turn, api_name="turn", concurrency_limit=None)
            chat_timer.tick(
                self.chat_tick,
                inputs=[session, browser],
                outputs=chat_outputs,
                show_progress="hidden",
                concurrency_limit=None,
                **private,
            )

            # -- review events: each checks the login token server-side
            login_outputs = [
                token,
                password,
                login_box,
                review_box,
                pending_df,
                audit_df,
                review_state,
                review_timer,
            ]
            gr.on(
                [login_btn.click, password.submit],
                self.review_login,
                inputs=[password],
                outputs=login_outputs,
                concurrency_limit=4,
                **private,
            )
            logout_btn.click(
                self.review_logout,
                inputs=[token],
                outputs=[
                    token,
                    login_box,
                    review_box,
                    pending_df,
                    audit_df,
                    review_state,
                    review_timer,
                    selected,
                    detail_box,
                ],
                **private,
            )
            review_timer.tick(
                self.review_tick,
                inputs=[token, review_state],
                outputs=[token, login_box, review_box, pending_df, audit_df, review_state, review_timer],
                show_progress="hidden",
                concurrency_limit=None,
                **private,
            )
            detail_outputs = [
                selected,
                detail_box,
                detail_md,
                message_view,
                proposed_view,
                reply_edit,
                history_view,
            ]
            pending_df.select(
                self.review_select,
                inputs=[token, review_state],
                outputs=detail_outputs,
                concurrency_limit=None,
                **private,
            )
            decide_outputs = [selected, detail_box, detail_md, reason_box, pending_df, audit_df, review_state]
            approve_btn.click(
                self.review_approve,
                inputs=[token, selected, reply_edit, reason_box, review_state],
                outputs=decide_outputs,
                concurrency_limit=4,
                **private,
            )
            reject_btn.click(
                self.review_reject,
                inputs=[token, selected, reply_edit, reason_box, review_state],
                outputs=decide_outputs,
                concurrency_limit=4,
                **private,
            )

            # -- usage events
            usage_outputs = [backends_df, meter_df, chart, usage_note, counts_md, counts_df]
            gr.on(
                [usage_tab.select, usage_btn.click],
                self.usage,
                inputs=[token],
                outputs=usage_outputs,
                concurrency_limit=4,
                **private,
            )
        return blocks


PENDING_COLUMNS = ["Waiting", "User", "Message", "Received (UTC)", "Ref"]
AUDIT_COLUMNS = ["Decided (UTC)", "By", "Decision", "Edited", "Reason", "User", "Message"]
METER_COLUMNS = [
    "Part",
    "Runs on",
    "Free tier",
    "Used so far",
    "Per chat turn",
    "Free quota a day",
    "Share of daily quota",
    "Turns a day it allows",
]


def build_blocks(kit: Kit, auth: Auth) -> gr.Blocks:
    """The UI as a gr.Blocks, not mounted (tests and notebooks may launch it on its own)."""
    return _Ui(kit, auth).build()


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
