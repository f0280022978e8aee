"""A chat turn as its callers see it: `TurnResult` from a workflow instance or from its stored row."""

from __future__ import annotations

from daca_kit.core.clock import as_utc, iso
from daca_kit.core.models import InstanceState, TurnResult
from daca_kit.core.ports import ConversationStore


def turn_result(state: InstanceState) -> TurnResult:
    """The turn an instance stands for, running, held for review, or ended."""
    output = state.output or {}
    turn_input = state.input or {}
    if state.is_terminal:
        status = output.get("status") or ("failed" if state.runtime_status == "FAILED" else "completed")
    else:
        status = "pending_review" if state.custom_status == "pending_review" else "running"
    return TurnResult(
        instance_id=state.instance_id,
        user_id=turn_input.get("user_id", ""),
        status=status,
        reply=output.get("reply"),
        error=output.get("error"),
        timestamp=output.get("timestamp"),
        session_id=(turn_input.get("metadata") or {}).get("session_id"),
        message_count=output.get("message_count"),
        model=output.get("model"),
        offline=bool(output.get("offline")),
        review=output.get("review"),
        created_at=iso(as_utc(state.created_at)),
    )


def stored_turn(conversations: ConversationStore, instance_id: str) -> TurnResult | None:
    """A turn that completed without waiting is kept only as its `conversation` row."""
    row = conversations.turn_by_instance(instance_id)
    if row is None:
        return None
    return TurnResult(
        instance_id=instance_id,
        user_id=row["user_id"],
        status="completed",
        reply=row["reply"],
        timestamp=iso(as_utc(row["timestamp"])),
    )
