from datetime import timedelta

import pytest

from daca_kit.errors import ConfigError
from daca_kit.settings import Settings, load_settings, parse_duration, parse_rate


def make(**env: str) -> Settings:
    return Settings(_env_file=None, **env)  # type: ignore[call-arg]


def test_defaults_need_no_accounts(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "DB_CONNECTION", "REDIS_URL", "AMQP_URL", "GEMINI_API_KEY", "PORT"):
        monkeypatch.delenv(name, raising=False)
    s = make()
    assert s.database_url == "sqlite:///data/daca.db"
    assert s.redis_url is None and s.amqp_url is None and s.gemini_api_key is None
    assert s.keywords == ("urgent", "help", "emergency")
    assert s.review_timeout == timedelta(hours=24)
    assert s.rate == (20, 60)
    assert s.port == 7860 and s.runtime == "local"


def test_tutorial_alias_db_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("DB_CONNECTION", "postgresql://u@h/db")
    assert Settings(_env_file=None).database_url == "postgresql://u@h/db"  # type: ignore[call-arg]


def test_https_redis_url_is_explained_and_value_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "https://default:s3cr3t-token@us1-rapid.upstash.io")
    with pytest.raises(ConfigError) as info:
        load_settings(_env_file=None)
    message = str(info.value)
    assert "UPSTASH_REDIS_REST_URL" in message
    assert "s3cr3t-token" not in message


def test_bad_values_are_refused_with_the_setting_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMQP_URL", "http://guest:pw@host")
    monkeypatch.setenv("DACA_REVIEW_TIMEOUT", "soon")
    with pytest.raises(ConfigError) as info:
        load_settings(_env_file=None)
    assert "AMQP_URL" in str(info.value) and "DACA_REVIEW_TIMEOUT" in str(info.value)
    assert "pw@" not in str(info.value)


def test_placeholder_secret_is_refused() -> None:
    with pytest.raises(ValueError):
        make(DACA_ADMIN_TOKEN="changethis")


def test_durations_and_rates() -> None:
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("15m") == timedelta(minutes=15)
    assert parse_duration("1.5d") == timedelta(hours=36)
    assert parse_duration("250ms") == timedelta(milliseconds=250)
    assert parse_rate("5/second") == (5, 1)
    with pytest.raises(ValueError):
        parse_rate("lots")


def test_upstash_needs_url_and_token_together() -> None:
    with pytest.raises(ValueError):
        make(UPSTASH_REDIS_REST_URL="https://x.upstash.io")


def test_offline_delay_slows_each_offline_reply() -> None:
    import time

    from daca_kit.bootstrap import build_model
    from daca_kit.core.models import ReplyRequest

    assert make().offline_delay == 0
    model = build_model(make(DACA_OFFLINE_DELAY="0.2"))
    started = time.perf_counter()
    reply = model.generate(ReplyRequest(user_id="alice", text="hi", message_count=1))
    assert time.perf_counter() - started >= 0.2
    assert reply.offline
    with pytest.raises(ValueError):
        make(DACA_OFFLINE_DELAY="-1")


def test_several_workers_need_a_shared_database_and_the_local_runtime(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("DATABASE_URL", "DB_CONNECTION", "DACA_RUNTIME"):
        monkeypatch.delenv(name, raising=False)
    assert make().web_concurrency == 1
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    with pytest.raises(
        ConfigError, match=r"WEB_CONCURRENCY=3 needs a database .* DATABASE_URL=postgresql://"
    ):
        load_settings(_env_file=None)
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/db")
    assert load_settings(_env_file=None).web_concurrency == 3
    monkeypatch.setenv("DACA_RUNTIME", "dapr")
    with pytest.raises(ConfigError, match="run more replicas"):
        load_settings(_env_file=None)
    monkeypatch.setenv("WEB_CONCURRENCY", "0")
    with pytest.raises(ConfigError, match="WEB_CONCURRENCY"):
        load_settings(_env_file=None)
