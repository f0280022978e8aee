"""The raw-stack reference server: what a chat turn costs on the same web stack with no kit at all.

    python -m daca_kit.ops.bench.raw      # reads DATABASE_URL (Postgres), REDIS_URL, AMQP_URL, PORT, HOST

Per `POST /chat/` it makes one bounded SELECT, one INSERT, one Redis INCR and one confirmed AMQP publish,
with plain psycopg, redis-py and pika clients, on FastAPI under uvicorn with one worker and sync handlers
in the thread pool, as the kit's server runs. It keeps the app's conventions so that the launcher and the
load generator treat it like the app: `GET /health`, and `GET /usage` in the app's shape (each service's
`calls`, and `turns_completed`).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
from typing import Any

from pydantic import BaseModel

log = logging.getLogger(__name__)


class RawTurn(BaseModel):
    """The raw reference's request body (the kit's ChatRequest minus metadata and tags)."""

    user_id: str
    text: str


def serve(host: str, port: int) -> None:
    import pika
    import psycopg
    import redis
    import uvicorn
    from fastapi import FastAPI

    database_url = os.environ["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    amqp_url = os.environ["AMQP_URL"]
    redis_client = redis.Redis.from_url(os.environ["REDIS_URL"], max_connections=50)
    counters = {"database": 0, "counters": 0, "events": 0, "model": 0}
    turns = 0
    count_lock = threading.Lock()
    pool: queue.LifoQueue[psycopg.Connection[Any]] = queue.LifoQueue()
    channels: queue.LifoQueue[Any] = queue.LifoQueue()  # one confirmed channel per concurrent request

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS raw_turn (id BIGSERIAL PRIMARY KEY, user_id VARCHAR(64) NOT NULL, "
            "message TEXT NOT NULL, reply TEXT NOT NULL, ts TIMESTAMPTZ NOT NULL)"
        )
        conn.execute("CREATE INDEX IF NOT EXISTS raw_turn_user_id_id ON raw_turn (user_id, id)")

    def connection() -> psycopg.Connection[Any]:
        try:
            return pool.get_nowait()
        except queue.Empty:
            return psycopg.connect(database_url)

    def channel() -> Any:
        try:
            return channels.get_nowait()
        except queue.Empty:
            ch = pika.BlockingConnection(pika.URLParameters(amqp_url)).channel()
            ch.confirm_delivery()
            ch.exchange_declare(exchange="raw-bench", exchange_type="fanout", durable=True)
            return ch

    app = FastAPI()

    @app.post("/chat/")
    def turn(body: RawTurn) -> dict[str, Any]:
        nonlocal turns
        conn = connection()
        try:
            history = conn.execute(
                "SELECT message, reply FROM raw_turn WHERE user_id = %s ORDER BY id DESC LIMIT 10",
                (body.user_id,),
            ).fetchall()
            reply = f"raw reply to {body.text} ({len(history)} earlier)"
            conn.execute(
                "INSERT INTO raw_turn (user_id, message, reply, ts) VALUES (%s, %s, %s, now())",
                (body.user_id, body.text, reply),
            )
            conn.commit()
        finally:
            pool.put(conn)
        redis_client.incr(f"raw_count:{body.user_id}")
        event = json.dumps(
            {"type": "MessageSent", "data": {"user_id": body.user_id, "reply": reply}}
        ).encode()
        ch = channel()
        ch.basic_publish(  # returns once the broker confirmed it (confirm_delivery)
            exchange="raw-bench",
            routing_key="",
            body=event,
            properties=pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent),
        )
        channels.put(ch)
        with count_lock:
            counters["database"] += 2
            counters["counters"] += 1
            counters["events"] += 1
            turns += 1
        return {"user_id": body.user_id, "reply": reply, "metadata": {"status": "completed"}}

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "healthy", "backends": {"raw": "psycopg+redis+pika"}}

    @app.get("/usage")
    def usage() -> dict[str, Any]:
        with count_lock:
            rows = [{"service": name, "calls": calls} for name, calls in counters.items()]
            return {"turns_completed": turns, "services": rows}

    log.info("raw reference serving on http://%s:%s/", host, port)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    serve(os.environ.get("HOST", "127.0.0.1"), int(os.environ["PORT"]))
