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
from typing import TYPE_CHECKING, Any

from daca_kit.settings import SERVICE_SETTINGS, Settings, load_settings

if TYPE_CHECKING:
    from daca_kit.core.kit import Kit

# Settings whose empty value means "off": passed as None so the environment cannot turn them on.
OPTIONAL = frozenset({*SERVICE_SETTINGS, "DACA_ADMIN_TOKEN", "DACA_REVIEWER_PASSWORD"})


def env_path(name: str | Path = "") -> Path:
    """The `.env` file a notebook reads and writes: `name`, or the project's `.env` when empty.

    A relative `name` is taken from the project's folder (where `python app.py` reads it), not from the
    notebook's, so notebooks 01, 02 and 03 meet the same file.
    """
    from daca_kit.ops.space import project_root

    path = Path(name) if name else Path(".env")
    return path if path.is_absolute() else project_root() / path


def settings_from(
    *, env_file: str | Path | None = None, inherit_blank: bool = False, **parameters: Any
) -> Settings:
    """Settings from notebook parameters (DESIGN.md's names).

    An empty parameter means the embedded default (a fresh SQLite file for DATABASE_URL), whatever the
    environment says; with `inherit_blank` it means "as the environment or `env_file` says" instead.
    Names not given come from the environment and, with `env_file`, from that `.env` file.
    """
    overrides: dict[str, Any] = {"_env_file": str(env_file) if env_file else None}
    for name, value in parameters.items():
        if inherit_blank and value in ("", None):
            continue
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
    from daca_kit.bootstrap import bootstrap  # imported here: notebooks 01 and 02 do not need the adapters

    kit = bootstrap(settings).start()
    wait_ready = getattr(kit.bus, "wait_ready", None)
    if callable(wait_ready):
        wait_ready(ready_timeout)
    return kit
