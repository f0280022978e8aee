"""The per-user rate limit holds under concurrent requests from one user: exactly `limit` accepted, the
rest 429 with Retry-After; other users are not affected. In-process limiter and the Redis-shared one."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

LIMIT, BURST = 10, 40


@pytest.fixture(params=["in-process", pytest.param("redis", marks=pytest.mark.integration)])
def app(request: pytest.FixtureRequest, make_app: Any) -> Any:
    overrides: dict[str, Any] = {"rate_limit": f"{LIMIT}/minute"}
    if request.param == "redis":
        overrides["redis_url"] = request.getfixturevalue("redis_url")
    return make_app(**overrides)


def test_concurrent_burst_from_one_user_admits_exactly_the_limit(app: Any) -> None:
    kit, client = app

    def send(i: int) -> Any:
        return client.post("/chat/", json={"user_id": "flood", "text": f"message {i}"})

    with ThreadPoolExecutor(max_workers=BURST) as pool:
        responses = list(pool.map(send, range(BURST)))

    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * LIMIT + [429] * (BURST - LIMIT)
    for r in responses:
        if r.status_code == 429:
            assert 1 <= int(r.headers["retry-after"]) <= 60
            assert "Too many messages" in r.json()["detail"]
    assert len(kit.conversations("flood", 500)) == LIMIT  # refused messages stored nothing
    assert client.post("/chat/", json={"user_id": "calm", "text": "hi"}).status_code == 200
