"""100 concurrent turns for one user: every turn is answered, stored once and counted exactly once,
on the embedded defaults and on real Postgres + Redis + RabbitMQ."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.conftest import purge_queues
from tests.support.appproc import AppProcess, eventually

TURNS = 100


async def _burst(base_url: str, user: str, turns: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(
        base_url=base_url, trust_env=False, timeout=60.0, limits=httpx.Limits(max_connections=turns)
    ) as client:
        return await asyncio.gather(
            *(client.post("/chat/", json={"user_id": user, "text": f"turn {i}"}) for i in range(turns))
        )


def _check(app: AppProcess, user: str) -> None:
    responses = asyncio.run(_burst(app.base_url, user, TURNS))
    assert [r.status_code for r in responses] == [200] * TURNS
    ids = {r.json()["metadata"]["instance_id"] for r in responses}
    assert len(ids) == TURNS
    with app.client() as client:
        eventually(lambda: client.get(f"/analytics/{user}").json()["message_count"] == TURNS, timeout=30)
        stored = client.get(f"/conversations/{user}", params={"limit": 500}, headers=app.admin_headers).json()
    assert len(stored) == TURNS
    assert {t["message"] for t in stored} == {f"turn {i}" for i in range(TURNS)}


def test_hundred_concurrent_turns_embedded(tmp_path: Path) -> None:
    with AppProcess(tmp_path, env={"DACA_RATE_LIMIT": "1000/minute"}) as app:
        _check(app, "busy")


@pytest.mark.slow  # an app process and 100 turns on real services
@pytest.mark.integration
def test_hundred_concurrent_turns_on_real_services(
    tmp_path: Path, pg_url: str, redis_url: str, amqp_url: str
) -> None:
    import redis

    purge_queues(amqp_url)
    env = {
        "DATABASE_URL": pg_url,
        "REDIS_URL": redis_url,
        "AMQP_URL": amqp_url,
        "DACA_RATE_LIMIT": "1000/minute",
    }
    with AppProcess(tmp_path, env=env) as app:
        _check(app, "busy")
    store = redis.Redis.from_url(redis_url, decode_responses=True)
    assert store.get("message_count:busy") == str(TURNS)
    assert len(store.keys("message_counted:*")) == TURNS
    store.close()
