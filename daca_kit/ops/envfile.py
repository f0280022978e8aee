"""The kit's settings in a `.env` file, written without ever showing a secret.

    values = settings_env(settings)                 # {"DATABASE_URL": "...", "GEMINI_API_KEY": "..."}
    write_env(".env", values)                       # merges into the file, mode 0600
    print(describe_env(values))                     # names and masked values only

Masking: a URL keeps its scheme, user, host, port and path with the password replaced by `***`; a key,
token or password shows only that it is set and its length; plain settings (GEMINI_MODEL, PORT) show.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

from pydantic import SecretStr

from daca_kit.settings import Settings

# Settings that are secrets as a whole.
SECRET_NAMES = frozenset(
    {
        "GEMINI_API_KEY",
        "UPSTASH_REDIS_REST_TOKEN",
        "DACA_ADMIN_TOKEN",
        "DACA_REVIEWER_PASSWORD",
        "DACA_REVIEWERS",  # password hashes: a Space secret, not a public variable
        "DACA_SESSION_SECRET",
        "HF_TOKEN",
        "CRONJOB_API_KEY",
    }
)
# Settings that are URLs which may carry a password.
URL_NAMES = frozenset({"DATABASE_URL", "DB_CONNECTION", "REDIS_URL", "AMQP_URL"})
_SECRET_WORDS = ("KEY", "TOKEN", "PASSWORD", "SECRET", "CREDENTIAL")
_PLAIN = re.compile(r"^[A-Za-z0-9_./:@%+,=-]*$")
_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")


def is_secret(name: str) -> bool:
    return name in SECRET_NAMES or any(word in name.upper() for word in _SECRET_WORDS)


def mask_url(url: str) -> str:
    """The URL with its password (and any secret-looking query value) replaced by `***`.

    The user info ends at the URL's last `@`, so a password with unencoded special characters is still
    masked whole (at worst, more than the password is masked).
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "<set, not a URL>"
    userinfo, at, after = rest.rpartition("@")
    if at and ":" in userinfo:
        rest = f"{userinfo.split(':', 1)[0]}:***@{after}"
    head, question, query = rest.partition("?")
    if question:
        pairs = []
        for pair in query.split("&"):
            key = pair.split("=", 1)[0]
            if pair:
                pairs.append(f"{key}=***" if is_secret(key) else pair)
        rest = head + "?" + "&".join(pairs)
    return f"{scheme}://{rest}"


def mask(name: str, value: str | SecretStr | None) -> str:
    """How a setting may be shown: never a secret's value."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if value is None or value == "":
        return "<unset>"
    if name in URL_NAMES or ("://" in value and not is_secret(name)):
        return mask_url(value)
    if is_secret(name):
        return f"<set, {len(value)} characters>"
    return value


def describe_env(values: Mapping[str, str | SecretStr | None]) -> str:
    """One `NAME=masked` line per setting."""
    return "\n".join(f"{name}={mask(name, value)}" for name, value in values.items())


def settings_env(settings: Settings, *, include_defaults: bool = False) -> dict[str, str]:
    """The settings as environment variables under DESIGN.md's names (by default only those that differ
    from the kit's defaults, so a `.env` stays short)."""
    values: dict[str, str] = {}
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        choices = getattr(alias, "choices", None)
        env_name = str(choices[0]) if choices else field_name.upper()
        value = getattr(settings, field_name)
        if value is None:
            continue
        if not include_defaults and value == field.default:
            continue
        if isinstance(value, SecretStr):
            text = value.get_secret_value()
        elif isinstance(value, timedelta):
            text = f"{value.total_seconds():g}s"
        else:
            text = str(value)
        if text != "":
            values[env_name] = text
    return values


def generate_missing(
    values: dict[str, str], names: tuple[str, ...] = ("DACA_ADMIN_TOKEN", "DACA_REVIEWER_PASSWORD")
) -> list[str]:
    """Fills each of `names` that has no value with a new random secret (in place); returns those names."""
    import secrets

    filled = [name for name in names if not values.get(name)]
    for name in filled:
        values[name] = secrets.token_urlsafe(24)
    return filled


def _quote(value: str) -> str:
    if _PLAIN.match(value):
        return value
    # python-dotenv reads single-quoted values literally except for \\ and \'.
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def write_env(
    path: str | os.PathLike[str], values: Mapping[str, str | SecretStr | None], *, merge: bool = True
) -> Path:
    """Writes `values` to the `.env` file at `path` (mode 0600).

    With `merge`, lines already in the file are kept and a name given here replaces its old line; a value
    of None removes the name. Returns the path; prints nothing.
    """
    target = Path(path)
    plain = {k: (v.get_secret_value() if isinstance(v, SecretStr) else v) for k, v in values.items()}
    lines: list[str] = []
    done: set[str] = set()
    if merge and target.exists():
        for line in target.read_text(encoding="utf-8").splitlines():
            match = _LINE.match(line)
            if match and match.group(1) in plain:
                name = match.group(1)
                if name not in done and plain[name] is not None:
                    lines.append(f"{name}={_quote(str(plain[name]))}")
                done.add(name)
                continue
            lines.append(line)
    for name, value in plain.items():
        if name not in done and value is not None:
            lines.append(f"{name}={_quote(str(value))}")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Created private before the secrets go in.
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + ("\n" if lines else ""))
    os.chmod(target, 0o600)
    return target


def read_env(path: str | os.PathLike[str]) -> dict[str, str]:
    """The names and values in a `.env` file (empty when it does not exist), parsed as pydantic-settings does."""
    from dotenv import dotenv_values

    target = Path(path)
    if not target.exists():
        return {}
    return {k: v for k, v in dotenv_values(target).items() if v is not None}
