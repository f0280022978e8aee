"""The raw-stack reference server: what a chat turn costs on the same web stack with no kit at all.

    python -m daca_kit.ops.bench.raw      # reads DATABASE_URL (Postgres), REDIS_URL, AMQP_URL, PORT, HOST,
                                          # WEB_CONCURRENCY (worker processes, default 1)

Per `POST /chat/` it makes one bounded SELECT, one INSERT, one Redis INCR (`raw_count:{user}`) and one
confirmed, persistent AMQP publish to a durable exchange with a durable queue bound to it,
which a consumer in each worker process reads and acknowledges, as the kit's analytics consumer does.
Plain psycopg, redis-py and pika clients, on FastAPI under uvicorn (its fast parsers when installed,
as for the app) with sync handlers in the thread pool, as the kit's server runs. It keeps the app's
conventions so that the launcher and the load generator treat it like the app: `GET /health`, and
`GET /usage` in the app's shape (each service's `calls`, and `turns_completed`, of the answering worker).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pydantic import BaseModel

log = logging.getLogger(__name__)

EXCHANGE = "raw-bench"
QUEUE = "raw-bench-counts"  # durable, bound to EXCHANGE; the bench reads its depth
COUNT_KEY = "raw_count:{}"


class RawTurn(BaseModel):
    """The raw reference's request body (the kit's ChatRequest minus metadata and tags)."""

    user_id: str
    text: str


def _database_url() -> str:
    return os.environ["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")


def prepare() -> None:
    """Creates the table, the exchange and its queue once, before the workers start."""
    import pika
    import psycopg

    with psycopg.connect(_database_url(), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS raw_turn (id BIGSERIAL PRIMARY KEY, user_id VARCHAR(64) NOT NULL, "
            "message TEXT NOT NULL, reply TEXT NOT NULL, ts TIMESTAMPTZ NOT NULL)"
        )
        conn.execute("CREATE INDEX IF NOT EXISTS raw_turn_user_id_id ON raw_turn (user_id, id)")
    connection = pika.BlockingConnection(pika.URLParameters(os.environ["AMQP_URL"]))
    try:
        channel = connection.channel()
        channel.exchange_declare(exchange=EXCHANGE, exchange_type="fanout", durable=True)
        channel.queue_declare(queue=QUEUE, durable=True)
        channel.queue_bind(queue=QUEUE, exchange=EXCHANGE)
    finally:
        connection.close()


def _consume(amqp_url: str, stop: threading.Event) -> None:
    """Reads and acknowledges the queue, one message at a time (prefetch 100, as the kit's consumer)."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=100)

    def on_message(ch: Any, method: Any, _props: Any, body: bytes) -> None:
        json.loads(body)
        ch.basic_ack(delivery_tag=method.delivery_tag)

    channel.basic_consume(queue=QUEUE, on_message_callback=on_message)
    try:
        while not stop.is_set():
            connection.process_data_events(time_limit=0.5)
    finally:
        connection.close()


def create_app() -> Any:
    """The reference app of one worker process (uvicorn calls it in each worker)."""
    import pika
    import psycopg
    import redis
    from fastapi import FastAPI

    database_url = _database_url()
    amqp_url = os.environ["AMQP_URL"]
    redis_client = redis.Redis.from_url(os.environ["REDIS_URL"], max_connections=50)
    counters = {"database": 0, "counters": 0, "events": 0, "model": 0}
    turns = 0
    count_lock = threading.Lock()
    pool: queue.LifoQueue[psycopg.Connection[Any]] = queue.LifoQueue()
    channels: queue.LifoQueue[Any] = queue.LifoQueue()  # one confirmed channel per concurrent request
    stop = threading.Event()

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
            return ch

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        consumer = threading.Thread(target=_consume, args=(amqp_url, stop), name="raw-consumer", daemon=True)
        consumer.start()
        yield
        stop.set()
        consumer.join(timeout=5)

    app = FastAPI(lifespan=lifespan)

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
        redis_client.incr(COUNT_KEY.format(body.user_id))
        event = json.dumps(
            {"type": "MessageSent", "data": {"user_id": body.user_id, "reply": reply}}
        ).encode()
        ch = channel()
        ch.basic_publish(  # returns once the broker confirmed it (confirm_delivery), queued and persisted
            exchange=EXCHANGE,
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

    return app


def serve(host: str, port: int) -> None:
    import uvicorn

    prepare()
    workers = int(os.environ.get("WEB_CONCURRENCY") or 1)
    log.info("raw reference serving on http://%s:%s/ with %d worker(s)", host, port, workers)
    uvicorn.run(
        "daca_kit.ops.bench.raw:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    serve(os.environ.get("HOST", "127.0.0.1"), int(os.environ["PORT"]))
