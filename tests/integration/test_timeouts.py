"""Each data adapter against a service that stops answering (a blackholed proxy): the call fails within
its timeout with a sentence naming the setting, never a secret, and the adapter recovers by itself."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from daca_kit.adapters.redis import RedisCounters
from daca_kit.adapters.sql import SqlDatabase
from daca_kit.adapters.upstash import UpstashCounters
from daca_kit.errors import BackendError, CountersError
from tests.conftest import PG_HOST, PG_PORT, REDIS_PORT
from tests.support.tcpproxy import MODES, Mode, TcpProxy
from tests.support.upstash_stub import UpstashRestStub

pytestmark = pytest.mark.integration

DB_PASSWORD = "pw-SECRET-5b0e"  # the local server trusts loopback, so any password connects
TOKEN = "upstash-SECRET-token-77"
WORDS = {  # what the sentence says, per cut
    "refuse": "closed from this host (the connection was refused)",
    "blackhole": "did not answer within 2 s (DACA_DB_TIMEOUT)",
    "reset": "dropped the connection",
}


def seconds(call: object) -> tuple[float, BaseException | None]:
    start = time.monotonic()
    try:
        call()  # type: ignore[operator]
    except BaseException as exc:  # noqa: BLE001 - returned for the test to inspect
        return time.monotonic() - start, exc
    return time.monotonic() - start, None


@pytest.fixture
def pg_proxy() -> Iterator[TcpProxy]:
    with TcpProxy(PG_HOST, PG_PORT) as proxy:
        yield proxy


@pytest.mark.parametrize("mode", MODES)
def test_database_fails_within_its_timeout_then_fast_then_recovers(
    pg_url: str, pg_proxy: TcpProxy, mode: Mode
) -> None:
    url = pg_proxy.wrap_url(pg_url).replace("postgres@", f"postgres:{DB_PASSWORD}@")
    db = SqlDatabase(url, timeout=2.0)
    try:
        db.create_all()
        assert (
            db.read(lambda c: c.exec_driver_sql("SELECT 1").scalar(), what="answer") == 1
        )  # a pooled connection
        pg_proxy.cut(mode)
        took, error = seconds(lambda: db.read(lambda c: c.exec_driver_sql("SELECT 1").scalar(), what="read"))
        assert isinstance(error, BackendError), error
        assert took < 2.0 + 0.5
        message = str(error)
        assert message.startswith("The database could not read: ")
        assert "DATABASE_URL" in message and DB_PASSWORD not in message
        assert WORDS[mode] in message, message
        took, again = seconds(lambda: db.run(lambda c: c.exec_driver_sql("SELECT 1").scalar(), what="write"))
        assert isinstance(again, BackendError) and took < 0.2  # fails fast while the database is down
        pg_proxy.restore()
        time.sleep(db.outage.cooldown)
        assert db.run(lambda c: c.exec_driver_sql("SELECT 2").scalar(), what="answer") == 2
    finally:
        pg_proxy.restore()
        db.close()


def test_a_connect_timeout_in_database_url_is_kept(pg_url: str) -> None:
    db = SqlDatabase(pg_url + "?connect_timeout=17", timeout=2.0)
    args = db.engine.dialect.create_connect_args(db.engine.url)[1]
    assert args["connect_timeout"] == "17"
    assert SqlDatabase(pg_url, timeout=2.5).engine.pool.timeout() == 2.5
    db.close()


@pytest.fixture
def redis_counters(redis_url: str) -> Iterator[tuple[RedisCounters, TcpProxy]]:
    with TcpProxy("127.0.0.1", REDIS_PORT) as proxy:
        counters = RedisCounters.from_url(proxy.wrap_url(redis_url), timeout=1.0)
        yield counters, proxy
        counters.close()


@pytest.fixture
def upstash_counters(redis_url: str) -> Iterator[tuple[UpstashCounters, TcpProxy]]:
    with UpstashRestStub(redis_url, token=TOKEN) as stub:
        with TcpProxy("127.0.0.1", int(stub.url.rsplit(":", 1)[1])) as proxy:
            counters = UpstashCounters.from_rest(proxy.url, TOKEN, timeout=1.0)
            yield counters, proxy
            counters.close()


@pytest.mark.parametrize(
    ("backend", "setting", "attempts"),
    [("redis", "REDIS_URL", 1), ("upstash", "UPSTASH_REDIS_REST_URL", 2)],  # Upstash's SDK retries once
)
def test_counters_that_stop_answering_fail_within_their_timeout(
    request: pytest.FixtureRequest, backend: str, setting: str, attempts: int
) -> None:
    counters, proxy = request.getfixturevalue(f"{backend}_counters")
    counters.set("ann", 4)  # a pooled connection, which the blackhole stalls
    proxy.cut("blackhole")
    took, error = seconds(lambda: counters.get("ann"))
    assert isinstance(error, CountersError), error
    assert took < attempts * 1.0 + 0.5  # redis-py retries a dropped connection, not a timeout
    assert setting in str(error) and TOKEN not in str(error)
    proxy.restore()
    time.sleep(counters.cooldown)
    assert counters.get("ann") == 4
