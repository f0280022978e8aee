"""Upstash REST counters, against a local REST stand-in that runs each command on the real local Redis."""

from __future__ import annotations

import pytest

from daca_kit.adapters.upstash import UpstashCounters
from daca_kit.bootstrap import bootstrap
from daca_kit.errors import CountersError
from tests.support.upstash_stub import UpstashRestStub

pytestmark = pytest.mark.integration


def test_counters_over_rest_share_keys_with_redis(redis_url) -> None:
    with UpstashRestStub(redis_url, token="rest-token") as stub:
        counters = UpstashCounters.from_rest(stub.url, "rest-token")
        assert counters.increment_once("bob", "e1") == 1
        assert counters.increment_once("bob", "e1") == 1
        assert counters.increment_once("bob", "e2") == 2
        counters.set("alice", 5)
        assert counters.get("alice") == 5
        assert stub.redis.get("message_count:bob") == b"2"  # the tutorial's key, readable with redis-cli
        assert counters.all() == {"alice": 5, "bob": 2}
        assert counters.hit("bob", 1, 60) == (True, 0.0)
        assert counters.hit("bob", 1, 60)[0] is False
        assert counters.reset() == 2
        assert counters.get("bob") == 0
        # One REST request per call (the meter counts them against Upstash's free tier).
        assert counters.commands == len(stub.commands) - 0


def test_the_meter_counts_every_request_upstash_received(redis_url) -> None:
    # Each REST request is a billed command, retries included: the meter counts what reached the server.
    with UpstashRestStub(redis_url, token="rest-token") as stub:
        counters = UpstashCounters.from_rest(stub.url, "rest-token")
        counters.set("bob", 1)
        stub.bad_gateway = 1  # a proxy's 502 page: the SDK cannot read it and sends the command again
        assert counters.get("bob") == 1
        counters.ping()
        assert stub.requests == 4
        assert counters.commands == stub.requests


def test_wrong_token_is_a_sentence_without_the_token(redis_url) -> None:
    with UpstashRestStub(redis_url, token="right") as stub:
        counters = UpstashCounters.from_rest(stub.url, "wrong-secret-token")
        with pytest.raises(CountersError) as info:
            counters.get("bob")
        assert "UPSTASH_REDIS_REST_TOKEN" in str(info.value)
        assert "wrong-secret-token" not in str(info.value)


def test_bootstrap_picks_upstash_rest_when_configured(settings_factory, redis_url) -> None:
    with UpstashRestStub(redis_url, token="tok") as stub:
        kit = bootstrap(
            settings_factory(
                upstash_redis_rest_url=stub.url, upstash_redis_rest_token="tok", rate_limit="100/minute"
            )
        ).start()
        try:
            assert kit.backends["counters"].label.startswith("upstash-rest://")
            assert kit.limiter.shared
            result = kit.chat_sync("carol", "hello")
            assert result.status == "completed"
            kit.relay.wait_idle(5)
            assert kit.message_count("carol") == 1
        finally:
            kit.close()
