"""How the tabs write waits, times and long messages in their tables."""

from __future__ import annotations

from daca_kit.core.clock import parse_iso


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
    """An ISO time from the kit as "YYYY-MM-DD HH:MM:SS" UTC; anything else as it came."""
    if not value:
        return ""
    try:
        return parse_iso(value).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return value


def clip(text: str | None, limit: int = 120) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
