"""Helpers the notebooks share, so their cells stay a few lines.

    settings = settings_from(DATABASE_URL="", REDIS_URL="", AMQP_URL="")   # "" means the embedded default
    kit = start_kit(settings)                                               # started, event consumers ready

Notebook parameters are settings under DESIGN.md's names. An empty value selects the embedded default
even when the environment or a `.env` file sets that name, so a notebook runs the same everywhere; an
empty DATABASE_URL means a fresh SQLite file in a temporary folder.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from daca_kit.bootstrap import bootstrap
from daca_kit.kit import Kit
from daca_kit.settings import Settings, load_settings

# Settings whose empty value means "off": passed as None so the environment cannot turn them on.
OPTIONAL = frozenset(
    {
        "REDIS_URL",
        "UPSTASH_REDIS_REST_URL",
        "UPSTASH_REDIS_REST_TOKEN",
        "AMQP_URL",
        "GEMINI_API_KEY",
        "GEMINI_BASE_URL",
        "DACA_ADMIN_TOKEN",
        "DACA_REVIEWER_PASSWORD",
    }
)


def settings_from(*, env_file: str | Path | None = None, **parameters: Any) -> Settings:
    """Settings from notebook parameters (DESIGN.md's names; "" or None: the embedded default).

    Names not given, and empty non-optional ones (GEMINI_MODEL, ...), come from the environment and,
    with `env_file`, from that `.env` file.
    """
    overrides: dict[str, Any] = {"_env_file": str(env_file) if env_file else None}
    for name, value in parameters.items():
        if name in ("DATABASE_URL", "DB_CONNECTION") and not value:
            folder = Path(tempfile.mkdtemp(prefix="daca-notebook-"))
            overrides["DATABASE_URL"] = f"sqlite:///{folder / 'daca.db'}"
        elif value not in ("", None):
            overrides[name] = value
        elif name in OPTIONAL:
            overrides[name] = None
    return load_settings(**overrides)


def start_kit(settings: Settings, *, ready_timeout: float = 15.0) -> Kit:
    """Builds and starts the kit in this process; waits until the event consumers are subscribed, so the
    first events are not published before anyone listens."""
    kit = bootstrap(settings).start()
    wait_ready = getattr(kit.bus, "wait_ready", None)
    if callable(wait_ready):
        wait_ready(ready_timeout)
    return kit
