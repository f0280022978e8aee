"""Settings, read from the environment or a `.env` file.

    settings = Settings()                    # environment + .env
    settings = Settings(database_url="sqlite:///:memory:")

Every setting has a safe embedded default: with none set the kit runs on a laptop with no accounts.
The tutorial's names are accepted as aliases (DB_CONNECTION for DATABASE_URL).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from datetime import timedelta
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day|s|m|h|d)\s*$")
_RATE_UNITS = {"second": 1, "s": 1, "minute": 60, "m": 60, "hour": 3600, "h": 3600, "day": 86400, "d": 86400}
_PLACEHOLDERS = {
    "changethis",
    "change-me",
    "changeme",
    "your-key",
    "your_api_key",
    "xxx",
    "<token>",
    "secret",
}

# A current stable Flash model (Gemini API deprecations page, November 2026). Model names retire fast,
# which is why GEMINI_MODEL is a setting and a 404 from Gemini names it.
DEFAULT_GEMINI_MODEL = "gemini-3.8-flash"


def parse_duration(text: str | float | int | timedelta) -> timedelta:
    """`"24h"`, `"90s"`, `"15m"`, `"1.5d"`, `"250ms"` or a number of seconds."""
    if isinstance(text, timedelta):
        return text
    if isinstance(text, int | float):
        return timedelta(seconds=float(text))
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"'{text}' is not a duration: write it like 24h, 15m, 90s or 250ms")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def parse_rate(text: str) -> tuple[int, int]:
    """`"20/minute"` -> (20, 60): at most 20 per 60 seconds. `"0/minute"` turns limiting off."""
    match = _RATE.match(text)
    if not match:
        raise ValueError(f"'{text}' is not a rate: write it like 20/minute, 5/second or 1000/day")
    return int(match.group(1)), _RATE_UNITS[match.group(2)]


class Settings(BaseSettings):
    """Typed settings; names are the contract in DESIGN.md."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    # Not a SecretStr (SQLAlchemy needs the string), but kept out of reprs: it may hold a password.
    database_url: str = Field(
        "sqlite:///data/daca.db",
        validation_alias=AliasChoices("DATABASE_URL", "DB_CONNECTION", "database_url"),
        repr=False,
    )
    # How long one database call may wait (connecting included) before the turn fails with a 503.
    db_timeout: float = Field(
        3.0, gt=0, le=300, validation_alias=AliasChoices("DACA_DB_TIMEOUT", "db_timeout")
    )
    redis_url: SecretStr | None = Field(None, validation_alias=AliasChoices("REDIS_URL", "redis_url"))
    upstash_redis_rest_url: str | None = Field(
        None, validation_alias=AliasChoices("UPSTASH_REDIS_REST_URL", "upstash_redis_rest_url")
    )
    upstash_redis_rest_token: SecretStr | None = Field(
        None, validation_alias=AliasChoices("UPSTASH_REDIS_REST_TOKEN", "upstash_redis_rest_token")
    )
    amqp_url: SecretStr | None = Field(None, validation_alias=AliasChoices("AMQP_URL", "amqp_url"))
    gemini_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("GEMINI_API_KEY", "gemini_api_key")
    )
    gemini_model: str = Field(
        DEFAULT_GEMINI_MODEL, validation_alias=AliasChoices("GEMINI_MODEL", "gemini_model")
    )
    gemini_base_url: str | None = Field(
        None, validation_alias=AliasChoices("GEMINI_BASE_URL", "gemini_base_url")
    )
    gemini_timeout: float = Field(30.0, validation_alias=AliasChoices("GEMINI_TIMEOUT", "gemini_timeout"))
    # Emulates a remote model's latency with the offline model (benchmarks, demos); 0 answers at once.
    offline_delay: float = Field(
        0.0, ge=0, le=60, validation_alias=AliasChoices("DACA_OFFLINE_DELAY", "offline_delay")
    )
    # ...and its pace: seconds before each word, streamed or not (the first word comes after both delays).
    offline_chunk_delay: float = Field(
        0.0,
        ge=0,
        le=5,
        validation_alias=AliasChoices("DACA_OFFLINE_CHUNK_DELAY", "offline_chunk_delay"),
    )
    runtime: Literal["local", "dapr"] = Field(
        "local", validation_alias=AliasChoices("DACA_RUNTIME", "runtime")
    )
    reviewer_password: SecretStr | None = Field(
        None, validation_alias=AliasChoices("DACA_REVIEWER_PASSWORD", "reviewer_password")
    )
    admin_token: SecretStr | None = Field(
        None, validation_alias=AliasChoices("DACA_ADMIN_TOKEN", "admin_token")
    )
    sensitive_keywords: str = Field(
        "urgent,help,emergency",
        validation_alias=AliasChoices("DACA_SENSITIVE_KEYWORDS", "sensitive_keywords"),
    )
    review_timeout: timedelta = Field(
        timedelta(hours=24), validation_alias=AliasChoices("DACA_REVIEW_TIMEOUT", "review_timeout")
    )
    history_turns: int = Field(
        10, ge=0, le=200, validation_alias=AliasChoices("DACA_HISTORY_TURNS", "history_turns")
    )
    rate_limit: str = Field("20/minute", validation_alias=AliasChoices("DACA_RATE_LIMIT", "rate_limit"))
    # Per visitor (client address), whatever user ids it sends; this machine is not limited.
    client_rate_limit: str = Field(
        "60/minute", validation_alias=AliasChoices("DACA_CLIENT_RATE_LIMIT", "client_rate_limit")
    )
    # Messages waiting for a reviewer: at most this many from one visitor, and in all.
    max_pending_per_client: int = Field(
        5,
        ge=0,
        le=10_000,
        validation_alias=AliasChoices("DACA_MAX_PENDING_PER_CLIENT", "max_pending_per_client"),
    )
    max_pending_reviews: int = Field(
        200,
        ge=0,
        le=1_000_000,
        validation_alias=AliasChoices("DACA_MAX_PENDING_REVIEWS", "max_pending_reviews"),
    )
    # Origins (scheme://host[:port]) whose pages may call this app from the browser; none by default.
    cors_origins: str = Field("", validation_alias=AliasChoices("DACA_CORS_ORIGINS", "cors_origins"))
    chat_wait: float = Field(30.0, ge=0, le=600, validation_alias=AliasChoices("DACA_CHAT_WAIT", "chat_wait"))
    port: int = Field(7860, ge=1, le=65535, validation_alias=AliasChoices("PORT", "port"))
    host: str = Field("0.0.0.0", validation_alias=AliasChoices("HOST", "host"))
    # Worker processes of `python app.py` on one port (uvicorn's and gunicorn's variable; hosts may set it).
    web_concurrency: int = Field(
        1, ge=1, le=64, validation_alias=AliasChoices("WEB_CONCURRENCY", "web_concurrency")
    )
    dapr_http_endpoint: str | None = Field(
        None, validation_alias=AliasChoices("DAPR_HTTP_ENDPOINT", "dapr_http_endpoint")
    )
    dapr_pubsub: str = Field("pubsub", validation_alias=AliasChoices("DACA_DAPR_PUBSUB", "dapr_pubsub"))
    dapr_statestore: str = Field(
        "statestore", validation_alias=AliasChoices("DACA_DAPR_STATESTORE", "dapr_statestore")
    )
    space_id: str | None = Field(None, validation_alias=AliasChoices("SPACE_ID", "space_id"))
    # Set by Hugging Face on a ZeroGPU Space (the `spaces` package reads the same variable).
    zero_gpu: bool = Field(False, validation_alias=AliasChoices("SPACES_ZERO_GPU", "zero_gpu"))
    # The user's own Gemini requests-per-day limit, read in AI Studio (Google publishes no fixed
    # free-tier figure); the usage meter counts the model against it only when it is set.
    gemini_requests_per_day: int | None = Field(
        None, ge=1, validation_alias=AliasChoices("GEMINI_REQUESTS_PER_DAY", "gemini_requests_per_day")
    )
    # Named reviewers: `name:hash` signs in with a password (hash from `daca-kit reviewer-hash`), a bare
    # name is a Hugging Face username that signs in with Hugging Face (on a Space with hf_oauth: true).
    reviewers: str | None = Field(None, validation_alias=AliasChoices("DACA_REVIEWERS", "reviewers"))
    # The key that signs reviewer sessions; unset: one generated once and kept in the database.
    session_secret: SecretStr | None = Field(
        None, validation_alias=AliasChoices("DACA_SESSION_SECRET", "session_secret")
    )
    # Proxies in front of the app whose X-Forwarded-For entries are believed; unset: 1 on a Space, else 0.
    trusted_proxies: int | None = Field(
        None, ge=0, le=5, validation_alias=AliasChoices("DACA_TRUSTED_PROXIES", "trusted_proxies")
    )
    # Set by Hugging Face on a Space whose front matter has `hf_oauth: true`.
    oauth_client_id: str | None = Field(
        None, validation_alias=AliasChoices("OAUTH_CLIENT_ID", "oauth_client_id"), repr=False
    )

    @field_validator("review_timeout", mode="before")
    @classmethod
    def _duration(cls, value: object) -> timedelta:
        if isinstance(value, str | int | float | timedelta):
            return parse_duration(value)
        raise ValueError("DACA_REVIEW_TIMEOUT must be a duration like 24h")

    @field_validator("zero_gpu", mode="before")
    @classmethod
    def _blank_is_false(cls, value: object) -> object:
        # An empty environment variable means "not set", as for the other optional settings.
        return False if isinstance(value, str) and not value.strip() else value

    @field_validator("gemini_requests_per_day", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("rate_limit", "client_rate_limit")
    @classmethod
    def _rate(cls, value: str) -> str:
        parse_rate(value)
        return value

    @field_validator("database_url")
    @classmethod
    def _db_url(cls, value: str) -> str:
        scheme = value.split("://", 1)[0].lower()
        if not scheme.startswith(("sqlite", "postgresql", "postgres", "cockroachdb")):
            raise ValueError(
                "DATABASE_URL must start with sqlite://, postgresql:// or cockroachdb:// "
                f"(got a URL starting with '{scheme}://')"
            )
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        scheme = urlsplit(value.get_secret_value()).scheme
        if scheme in ("http", "https"):
            raise ValueError(
                "REDIS_URL is an https:// address, which is Upstash's REST URL, not a Redis URL: put it in "
                "UPSTASH_REDIS_REST_URL (with UPSTASH_REDIS_REST_TOKEN), or use the rediss:// URL from Upstash"
            )
        if scheme not in ("redis", "rediss", "unix"):
            raise ValueError("REDIS_URL must start with redis:// or rediss:// (TLS, as Upstash needs)")
        return value

    @field_validator("amqp_url")
    @classmethod
    def _amqp_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if urlsplit(value.get_secret_value()).scheme not in ("amqp", "amqps"):
            raise ValueError("AMQP_URL must start with amqp:// or amqps:// (TLS, as CloudAMQP offers)")
        return value

    @field_validator("reviewers")
    @classmethod
    def _reviewers(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parse_reviewers(value)
        return value

    @field_validator("session_secret")
    @classmethod
    def _session_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        if len(value.get_secret_value()) < 32:
            raise ValueError(
                'is shorter than 32 characters: use a long random value (python -c "import secrets; '
                'print(secrets.token_urlsafe(32))"), or leave it unset to keep a generated key in the database'
            )
        return value

    @field_validator(
        "gemini_api_key", "admin_token", "reviewer_password", "upstash_redis_rest_token", "session_secret"
    )
    @classmethod
    def _no_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        if value.get_secret_value().strip().lower() in _PLACEHOLDERS:
            raise ValueError("is a placeholder: set a real secret or leave it unset")
        return value

    @model_validator(mode="after")
    def _upstash_pair(self) -> Settings:
        if bool(self.upstash_redis_rest_url) != bool(self.upstash_redis_rest_token):
            raise ValueError("UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN must be set together")
        return self

    @model_validator(mode="after")
    def _workers(self) -> Settings:
        if self.web_concurrency > 1 and self.database_url.split(":", 1)[0].lower().startswith("sqlite"):
            raise ValueError(
                f"WEB_CONCURRENCY={self.web_concurrency} needs a database that all worker processes share: "
                "set DATABASE_URL=postgresql://... (or cockroachdb://...), or WEB_CONCURRENCY=1 for SQLite"
            )
        if self.web_concurrency > 1 and self.runtime == "dapr":
            raise ValueError(
                "WEB_CONCURRENCY>1 runs the local workflow runtime's workers; in Dapr mode (DACA_RUNTIME=dapr) "
                "run more replicas of the app with their own sidecars instead, and leave WEB_CONCURRENCY=1"
            )
        return self

    @model_validator(mode="after")
    def _reviewer_accounts(self) -> Settings:
        accounts = parse_reviewers(self.reviewers or "")
        if self.reviewer_password is not None and "reviewer" in {n.lower() for n in accounts}:
            raise ValueError(
                "DACA_REVIEWERS names 'reviewer', the account of DACA_REVIEWER_PASSWORD: rename one of them"
            )
        hf_names = [n for n, h in accounts.items() if h is None]
        if hf_names and self.on_space and not self.oauth_client_id:
            raise ValueError(
                f"DACA_REVIEWERS names Hugging Face users ({', '.join(hf_names)}) but this Space has no "
                "sign-in: add `hf_oauth: true` to the front matter of the Space's README.md"
            )
        if hf_names and not self.on_space and not is_loopback(self.host):
            raise ValueError(
                f"DACA_REVIEWERS names Hugging Face users ({', '.join(hf_names)}) without password hashes, "
                "but this is not a Space: give each a hash (name:hash, from `daca-kit reviewer-hash`). "
                "Outside a Space, Gradio's sign-in is a local mock that signs any visitor in as this "
                "machine's Hugging Face account, so it is allowed only with HOST=127.0.0.1"
            )
        return self

    @property
    def password_reviewers(self) -> dict[str, str]:
        """Named reviewers who sign in with a password: name -> scrypt hash."""
        return {n: h for n, h in parse_reviewers(self.reviewers or "").items() if h is not None}

    @property
    def hf_reviewers(self) -> tuple[str, ...]:
        """Hugging Face usernames who sign in with Hugging Face."""
        return tuple(n for n, h in parse_reviewers(self.reviewers or "").items() if h is None)

    @property
    def proxy_hops(self) -> int:
        """How many proxies' X-Forwarded-For entries to believe: DACA_TRUSTED_PROXIES, else 1 on a Space."""
        if self.trusted_proxies is not None:
            return self.trusted_proxies
        return 1 if self.on_space else 0

    @property
    def keywords(self) -> tuple[str, ...]:
        return tuple(k.strip().lower() for k in self.sensitive_keywords.split(",") if k.strip())

    @property
    def rate(self) -> tuple[int, int]:
        return parse_rate(self.rate_limit)

    @property
    def client_rate(self) -> tuple[int, int]:
        return parse_rate(self.client_rate_limit)

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip()]

    @property
    def on_space(self) -> bool:
        return bool(self.space_id)


_REVIEWER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_PASSWORD_HASH = re.compile(r"scrypt\$\d{1,2}\$\d{1,2}\$\d{1,2}\$[A-Za-z0-9_-]{16,}\$[A-Za-z0-9_-]{32,}")


def parse_reviewers(text: str) -> dict[str, str | None]:
    """`"alice:scrypt$...,hf-bob"` -> {"alice": "scrypt$...", "hf-bob": None}; a ValueError says what is wrong
    (never quoting a hash)."""
    accounts: dict[str, str | None] = {}
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        name, sep, stored = (part.strip() for part in entry.partition(":"))
        if not _REVIEWER_NAME.fullmatch(name):
            raise ValueError(
                f"DACA_REVIEWERS: '{name[:64]}' is not a reviewer name (letters, digits, '.', '_' or '-', "
                "at most 64): write name:hash or a Hugging Face username, separated by commas"
            )
        if name.lower() in {n.lower() for n in accounts}:
            raise ValueError(f"DACA_REVIEWERS names '{name}' twice: keep one entry per reviewer")
        if sep and not _PASSWORD_HASH.fullmatch(stored):
            raise ValueError(
                f"DACA_REVIEWERS: the entry of '{name}' is not name:hash with a password hash: make the hash "
                "with `daca-kit reviewer-hash " + name + "` and paste its whole output"
            )
        accounts[name] = stored if sep else None
    return accounts


# Asked for every request, and parsing an address costs more than the rest of the check: cached.
@functools.lru_cache(maxsize=4096)
def is_loopback(host: str | None) -> bool:
    """Whether `host` (an address or "localhost") is this machine."""
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def setting_names() -> tuple[str, ...]:
    """Every environment variable the kit reads, aliases included (derived from `Settings`)."""
    names: list[str] = []
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.extend(c for c in alias.choices if isinstance(c, str) and c.isupper())
    return tuple(names)


def _env_name(where: str) -> str:
    """The environment variable of a field (`session_secret` -> DACA_SESSION_SECRET), or `where` itself."""
    field = Settings.model_fields.get(where)
    if field is not None and isinstance(field.validation_alias, AliasChoices):
        for choice in field.validation_alias.choices:
            if isinstance(choice, str) and choice.isupper():
                return choice
    return where.upper()


# The settings that switch a part to a real service; empty means "embedded".
SERVICE_SETTINGS = (
    "REDIS_URL",
    "UPSTASH_REDIS_REST_URL",
    "UPSTASH_REDIS_REST_TOKEN",
    "AMQP_URL",
    "GEMINI_API_KEY",
    "GEMINI_BASE_URL",
)


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, or a ConfigError whose message names settings but never values."""
    from pydantic import ValidationError

    from daca_kit.errors import ConfigError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors(include_input=False, include_url=False):
            where = ".".join(str(p) for p in err.get("loc", ()))
            message = str(err.get("msg", "")).removeprefix("Value error, ")
            name = _env_name(where)
            lines.append(message if not name or message.startswith(name) else f"{name}: {message}")
        raise ConfigError("Invalid settings: " + "; ".join(lines)) from None
