"""A chat session as the Chat tab keeps it, and how it is shown.

    session = {"user_id": ..., "history": history_messages(rows), "turns": [], "count_checks": 0}
    chatbot_value = chat_messages(session); kept_in_browser = browser_state(browser, session)

`history` holds the stored turns as chat messages; `turns` the ones sent from this page (id, message,
status, reply), shown after the history until the page reloads. The browser keeps its identity (the user
id and the signed token the server issued for it, see daca_kit.web.identity) and the turns still waiting
for a reviewer, so a reload shows them again.
"""

from __future__ import annotations

from typing import Any

from daca_kit.core.models import TurnResult

WAITING_TITLE = "Waiting for a human reviewer"
WAITING_TEXT = (
    "Your message mentions a sensitive topic, so a person reads the reply before you get it. "
    "It will appear here by itself; you can keep chatting meanwhile."
)
WRITING_TITLE = "Writing a reply…"


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
    if status == "running" and turn.get("reply"):
        reply: dict[str, Any] = {"role": "assistant", "content": turn["reply"]}  # written so far
    elif status == "running":
        reply = {
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


def apply_result(turn: dict[str, Any], result: TurnResult) -> None:
    """Copies where a turn stands (status, reply or error) into the session's turn."""
    turn["status"] = result.status
    if result.status == "failed":
        turn["status"] = "error"
        turn["reply"] = result.error or "the reply could not be generated."
    else:
        turn["reply"] = result.reply


def expect_count(session: dict[str, Any], result: TurnResult) -> None:
    """The counter is updated by an event consumer: after a stored turn, look again if it lags."""
    if result.status == "completed" and result.message_count is not None:
        session["expected_count"] = result.message_count + 1
        session["count_checks"] = 3


def stored_token(browser: Any) -> str | None:
    """The identity token this browser kept, if any (its signature is checked by the caller)."""
    stored = browser.get("token") if isinstance(browser, dict) else None
    return stored if isinstance(stored, str) and stored else None


def browser_state(browser: Any, session: dict[str, Any], token: str | None) -> dict[str, Any]:
    """What the browser keeps: its identity (user id and token; a Hugging Face sign-in keeps the token it
    had) and the turns still waiting (with their text, to show them)."""
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
    return {"user_id": session["user_id"], "token": token, "pending": (others + mine)[-20:]}
