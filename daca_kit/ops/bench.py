"""`daca-kit bench`: measures the app over HTTP on loopback, next to a raw-stack reference.

    daca-kit bench                                   # all scenarios, 32 users, results in build/bench/
    daca-kit bench --scenarios embedded --users 8 --turns 200
    daca-kit bench --url http://127.0.0.1:7860 --users 4 --turns 100   # a running app

Scenarios (each starts its own server on 127.0.0.1 and stops it; bounded by --turns and --max-seconds):
- embedded: the defaults (SQLite, embedded counters and events), C concurrent users, then one user;
- real:     Postgres + Redis + RabbitMQ (a scratch database and vhost, dropped afterwards), likewise;
- raw:      the raw-stack reference: the same web stack (FastAPI on uvicorn, one worker) doing one
            bounded SELECT, one INSERT, one Redis INCR and one confirmed AMQP publish per request with
            no kit; the kit's turns/s on real services is reported as a ratio of it;
- history:  one user with 10, 1,000 and 100,000 stored turns (seeded in the database directly);
- reviews:  100 reviews pending for --review-seconds: backend calls made while they wait.

The reply model is the offline one (optionally with --model-delay seconds per call, to emulate a
remote model). Backend calls per turn (SQL statements, Redis commands, AMQP publishes, model calls)
come from the server's counters (`Kit.backend_calls`); the server's memory (VmRSS) and CPU time come
from /proc. Results go to `<out>/bench-<time>.json`, `<out>/bench.json` and `<out>/bench.png`; the
servers' output to `<out>/kit-server.log` and `<out>/raw-server.log`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from pydantic import BaseModel

from daca_kit.settings import setting_names

log = logging.getLogger(__name__)

SCENARIOS = ("embedded", "real", "raw", "history", "reviews")
SERVICE_KEYS = ("database", "counters", "events", "model")
CALL_NAMES = {
    "database": "SQL statements",
    "counters": "Redis commands",
    "events": "event publishes",
    "model": "model calls",
}
NO_LIMIT = "100000000/minute"  # the limiter runs (and costs what it costs) but never refuses
_PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
_CONTROLLED = setting_names()


# -- statistics ---------------------------------------------------------------------------------
def percentiles(samples_ms: list[float]) -> dict[str, float | None]:
    """p50/p95/p99/mean/max of latencies in milliseconds (nearest-rank percentiles)."""
    if not samples_ms:
        return {"p50": None, "p95": None, "p99": None, "mean": None, "max": None}
    ordered = sorted(samples_ms)

    def rank(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]

    return {
        "p50": round(rank(50), 2),
        "p95": round(rank(95), 2),
        "p99": round(rank(99), 2),
        "mean": round(statistics.fmean(ordered), 2),
        "max": round(ordered[-1], 2),
    }


# -- servers ------------------------------------------------------------------------------------
def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (KiB) and CPU time (ms) of a process, from /proc (Linux)."""
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1])
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        out["cpu_ms"] = round((int(fields[11]) + int(fields[12])) * 1000 / ticks)
    except (OSError, ValueError, IndexError):
        pass
    return out


class Server:
    """A server subprocess on 127.0.0.1 (`python -m daca_kit.ops.bench --serve kit|raw`)."""

    def __init__(self, kind: str, env: dict[str, str], workdir: Path, *, model_delay: float = 0.0) -> None:
        self.kind = kind
        self.port = free_port()
        self.workdir = workdir
        self.log_path = workdir / f"{kind}-server.log"
        child_env = {k: v for k, v in os.environ.items() if k not in _CONTROLLED and k not in _PROXIES}
        child_env.update(env)
        child_env.update({"PYTHONUNBUFFERED": "1", "DACA_CHAT_WAIT": "0"})
        command = [sys.executable, "-m", "daca_kit.ops.bench", "--serve", kind, "--port", str(self.port)]
        if model_delay:
            command += ["--model-delay", str(model_delay)]
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            command,
            cwd=workdir,
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.base_url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(trust_env=False, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the {self.kind} server exited while starting:\n{self.log_tail()}")
                try:
                    if client.get(self.base_url + "/bench/calls").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        raise RuntimeError(f"the {self.kind} server did not start within {timeout:g} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def status(self) -> dict[str, int]:
        return proc_status(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()


@contextmanager
def running(kind: str, env: dict[str, str], workdir: Path, *, model_delay: float = 0.0) -> Iterator[Server]:
    server = Server(kind, env, workdir, model_delay=model_delay)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def thread_names() -> dict[str, str]:
    """{native thread id: Python thread name} of this process (for CPU time per thread from /proc)."""
    import threading

    return {str(t.native_id): t.name for t in threading.enumerate() if t.native_id is not None}


def thread_cpu_ms(pid: int) -> dict[int, float]:
    """CPU time (ms) of each thread of a process, by native thread id, from /proc (Linux)."""
    ticks = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return out
    for task in tasks:
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            out[int(task.name)] = (int(fields[11]) + int(fields[12])) * 1000 / ticks
        except (OSError, ValueError, IndexError):
            continue
    return out


def _thread_group(name: str) -> str:
    """Thread names grouped by role: "AnyIO worker thread", "outbox-relay", "amqp-consumer-...", ..."""
    import re

    return re.sub(r"[-_ ]?\(?\d+\)?$", "", re.sub(r"_\d+$", "", name)) or name


def _serve_kit(port: int, model_delay: float) -> None:
    """The kit's server as `daca_kit.web.server.serve` builds it (REST API, no UI), plus /bench/calls."""
    import uvicorn

    from daca_kit.adapters.offline import OfflineReplyModel
    from daca_kit.bootstrap import bootstrap
    from daca_kit.settings import load_settings
    from daca_kit.web.auth import Auth
    from daca_kit.web.server import build_app

    settings = load_settings()
    kit = (
        bootstrap(settings, llm=OfflineReplyModel(delay=model_delay)) if model_delay else bootstrap(settings)
    )
    kit.start()
    app = build_app(kit, auth=Auth.from_settings(settings, kit.stores.keys), with_ui=False)

    def calls() -> dict[str, Any]:
        return {
            "calls": kit.backend_calls(),
            "turns": kit.turns_completed,
            "backends": {k: v.label for k, v in kit.backends.items()},
        }

    app.add_api_route("/bench/calls", calls, methods=["GET"])
    app.add_api_route("/bench/threads", thread_names, methods=["GET"])
    try:
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    finally:
        kit.close()


class RawTurn(BaseModel):
    """The raw reference's request body (the kit's ChatRequest minus metadata and tags)."""

    user_id: str
    text: str


def _serve_raw(port: int) -> None:
    """The raw-stack reference: per request one bounded SELECT, one INSERT, one Redis INCR and one
    confirmed AMQP publish, on the same web stack as the kit (FastAPI on uvicorn, one worker, sync
    handlers in the thread pool), with plain psycopg, redis-py and pika clients and no kit code."""
    import queue
    import threading

    import pika
    import psycopg
    import redis
    import uvicorn
    from fastapi import FastAPI

    database_url = os.environ["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    amqp_url = os.environ["AMQP_URL"]
    redis_client = redis.Redis.from_url(os.environ["REDIS_URL"], max_connections=50)
    counters = {"database": 0, "counters": 0, "events": 0, "model": 0}
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
        return {"user_id": body.user_id, "reply": reply, "metadata": {"status": "completed"}}

    @app.get("/bench/calls")
    def calls() -> dict[str, Any]:
        with count_lock:
            return {"calls": dict(counters), "turns": None, "backends": {"raw": "psycopg+redis+pika"}}

    app.add_api_route("/bench/threads", thread_names, methods=["GET"])

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# -- load ---------------------------------------------------------------------------------------
@dataclass
class LoadResult:
    users: int
    requested: int
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "users": self.users,
            "turns_requested": self.requested,
            "turns_ok": self.ok,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "turns_per_s": round(self.ok / self.seconds, 1) if self.seconds else None,
            "latency_ms": percentiles(self.latencies_ms),
        }


async def _load(
    base_url: str,
    *,
    users: int,
    turns: int,
    max_seconds: float,
    user_prefix: str,
    text: Callable[[int], str],
    progress: bool,
    label: str,
    expect: int = 200,
    warm_up: bool = False,
) -> LoadResult:
    from tqdm.auto import tqdm

    result = LoadResult(users=users, requested=turns)
    next_turn = 0
    deadline = time.monotonic() + max_seconds
    bar = tqdm(total=turns, desc=label, unit="turn", disable=not progress, leave=False)
    limits = httpx.Limits(max_connections=users, max_keepalive_connections=users)
    async with httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=60.0, limits=limits) as client:
        if warm_up:  # not measured: one turn per user opens the server's connections and pools
            await asyncio.gather(
                *(
                    client.post("/chat/", json={"user_id": f"{user_prefix}{u}", "text": "warm-up"})
                    for u in range(users)
                )
            )

        async def user(u: int) -> None:
            nonlocal next_turn
            while next_turn < turns and time.monotonic() < deadline:
                n = next_turn
                next_turn += 1
                started = time.perf_counter()
                try:
                    response = await client.post(
                        "/chat/", json={"user_id": f"{user_prefix}{u}", "text": text(n)}
                    )
                    code = str(response.status_code)
                except httpx.HTTPError as exc:
                    code = type(exc).__name__
                elapsed = (time.perf_counter() - started) * 1000
                if code == str(expect):
                    result.ok += 1
                    result.latencies_ms.append(elapsed)
                else:
                    result.errors[code] = result.errors.get(code, 0) + 1
                bar.update(1)

        started = time.perf_counter()
        await asyncio.gather(*(user(u) for u in range(users)))
        result.seconds = time.perf_counter() - started
    bar.close()
    return result


def run_load(base_url: str, **kwargs: Any) -> LoadResult:
    return asyncio.run(_load(base_url, **kwargs))


def read_calls(client: httpx.Client) -> dict[str, float]:
    """The server's backend call counters: /bench/calls on a bench server, else GET /usage (un-scaled)."""
    response = client.get("/bench/calls")
    if response.status_code == 200:
        return {k: float(v) for k, v in response.json()["calls"].items()}
    rows = client.get("/usage").json()["services"]
    return {row["service"]: float(row["calls"]) for row in rows}


def settled_calls(client: httpx.Client, *, timeout: float = 15.0) -> dict[str, float]:
    """The counters once background work (outbox relay, event consumer) has stopped moving them."""
    deadline = time.monotonic() + timeout
    last = read_calls(client)
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = read_calls(client)
        if now == last:
            return now
        last = now
    return last


def measure(server_url: str, server: Server | None, *, label: str, **load: Any) -> dict[str, Any]:
    """One load phase with its backend-call deltas, CPU time and memory."""
    with httpx.Client(base_url=server_url, trust_env=False, timeout=30.0) as client:
        run_load(server_url, label=label, warm_up=True, **load)
        before = settled_calls(client)
        cpu_before = server.status().get("cpu_ms") if server else None
        threads_before = thread_cpu_ms(server.proc.pid) if server else {}
        result = run_load(server_url, label=label, **load)
        after = settled_calls(client)
        cpu_after = server.status().get("cpu_ms") if server else None
        threads_after = thread_cpu_ms(server.proc.pid) if server else {}
        names = client.get("/bench/threads").json() if server else {}
    out = result.summary()
    turns = max(1, result.ok)
    out["calls_per_turn"] = {k: round((after.get(k, 0) - before.get(k, 0)) / turns, 2) for k in SERVICE_KEYS}
    if server is not None:
        status = server.status()
        out["server"] = {
            "pid": server.proc.pid,
            "rss_kib": status.get("VmRSS"),
            "peak_rss_kib": status.get("VmHWM"),
            "cpu_ms_per_turn": round((cpu_after - cpu_before) / turns, 2)
            if cpu_before is not None and cpu_after is not None
            else None,
        }
        by_thread: dict[str, float] = {}
        for tid, ms in threads_after.items():
            group = _thread_group(names.get(str(tid), "other (native)"))
            by_thread[group] = by_thread.get(group, 0.0) + (ms - threads_before.get(tid, 0.0)) / turns
        out["server"]["cpu_ms_per_turn_by_thread"] = {
            k: round(v, 2) for k, v in sorted(by_thread.items(), key=lambda kv: -kv[1]) if v >= 0.005
        }
    return out


# -- services -----------------------------------------------------------------------------------
@contextmanager
def scratch_postgres(admin_url: str) -> Iterator[str]:
    """A new database on the local Postgres for this run, dropped afterwards."""
    import psycopg

    name = f"daca_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin_url)
    try:
        yield urlunsplit(parts._replace(path="/" + name))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def scratch_vhost(amqp_url: str) -> Iterator[str]:
    """A private RabbitMQ vhost (via rabbitmqctl, when it is on this machine), deleted afterwards."""
    ctl = shutil.which("rabbitmqctl")
    vhost = f"daca-bench-{uuid.uuid4().hex[:8]}"
    parts = urlsplit(amqp_url)
    user = parts.username or "guest"
    if ctl is None or subprocess.run([ctl, "-q", "add_vhost", vhost], capture_output=True).returncode != 0:
        yield amqp_url
        return
    subprocess.run([ctl, "-q", "set_permissions", "-p", vhost, user, ".*", ".*", ".*"], capture_output=True)
    try:
        yield urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))
    finally:
        subprocess.run([ctl, "-q", "delete_vhost", vhost], capture_output=True)


def seed_history(database_url: str, user_id: str, turns: int) -> None:
    """Stores `turns` finished turns for `user_id` directly in the database (no events)."""
    from daca_kit.adapters.sql import open_stores

    stores = open_stores(database_url)
    store = stores.conversations
    try:
        stores.database.create_all()
        now = datetime.now(UTC)
        chunk = 5000
        for start in range(0, turns, chunk):
            rows = [
                (f"seeded message {i}", f"seeded reply {i}") for i in range(start, min(turns, start + chunk))
            ]
            store.bulk_insert_turns(user_id, rows, now)  # type: ignore[attr-defined]
    finally:
        stores.database.close()


# -- the run ------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="daca-kit bench",
        description="Benchmark the app on loopback next to a raw-stack reference (see the module docstring).",
    )
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help=f"comma list of {', '.join(SCENARIOS)}"
    )
    parser.add_argument("--url", help="drive an already running app instead (load only)")
    parser.add_argument("--users", type=int, default=32, help="concurrent simulated users (default 32)")
    parser.add_argument("--turns", type=int, default=2000, help="turns per load phase (default 2000)")
    parser.add_argument(
        "--single-turns", type=int, default=300, help="turns of the one-user phase (default 300)"
    )
    parser.add_argument(
        "--max-seconds", type=float, default=60.0, help="time bound of each phase (default 60)"
    )
    parser.add_argument(
        "--model-delay", type=float, default=0.0, help="seconds the offline model waits per reply"
    )
    parser.add_argument("--history-sizes", default="10,1000,100000", help="stored turns per history user")
    parser.add_argument("--history-turns", type=int, default=200, help="turns measured per history user")
    parser.add_argument("--history-backend", choices=("real", "embedded"), default="real")
    parser.add_argument("--reviews", type=int, default=100, help="reviews left pending (default 100)")
    parser.add_argument("--review-seconds", type=float, default=60.0, help="how long they wait (default 60)")
    parser.add_argument("--postgres-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--database-url", help="use this database for the real set (default: a scratch one)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/%2F")
    parser.add_argument(
        "--out", default="build/bench", help="folder for the JSON and PNG (default build/bench)"
    )
    parser.add_argument("--no-chart", action="store_true", help="skip the PNG")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--serve", choices=("kit", "raw"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.scenario_list = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(args.scenario_list) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    if args.users < 1 or args.turns < 0 or args.max_seconds <= 0:
        parser.error("--users must be at least 1, --turns at least 0 and --max-seconds positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve == "kit":
        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        _serve_kit(args.port, args.model_delay)
        return 0
    if args.serve == "raw":
        logging.basicConfig(level=logging.WARNING)
        _serve_raw(args.port)
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run_id = uuid.uuid4().hex[:6]
    report: dict[str, Any] = {
        "version": 1,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "config": {
            k: v
            for k, v in vars(args).items()
            if k
            not in (
                "serve",
                "port",
                "scenario_list",
                "postgres_admin",
                "database_url",
                "redis_url",
                "amqp_url",
            )
        },
        "notes": [
            "Loopback only; one uvicorn worker for the kit and for the raw reference; the load generator "
            "runs on the same machine and shares its CPUs.",
            "calls_per_turn counts SQL statements (BEGIN/COMMIT excluded), Redis commands, AMQP publishes "
            "and model calls, including the outbox relay's and the analytics consumer's.",
        ],
        "scenarios": {},
    }
    load = {
        "users": args.users,
        "turns": args.turns,
        "max_seconds": args.max_seconds,
        "progress": not args.quiet,
        "text": lambda n: f"bench message {n}",
    }
    single = {**load, "users": 1, "turns": args.single_turns}
    scenarios: dict[str, Any] = report["scenarios"]
    workdir = Path(tempfile.mkdtemp(prefix="daca-bench-"))
    try:
        if args.url:
            scenarios["external"] = measure(
                args.url, None, label="app", user_prefix=f"bench-{run_id}-u", **load
            )
        else:
            _run_scenarios(args, run_id, workdir, load, single, scenarios)
    except KeyboardInterrupt:
        print("interrupted: writing what was measured", file=sys.stderr)
    finally:
        for log_file in workdir.glob("*-server.log"):  # the servers' output, for a look after the run
            shutil.copy(log_file, out / log_file.name)
        shutil.rmtree(workdir, ignore_errors=True)
    report["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    report["targets"] = targets(scenarios, args)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    text = json.dumps(report, indent=2)
    (out / f"bench-{stamp}.json").write_text(text)
    (out / "bench.json").write_text(text)
    if not args.no_chart:
        chart(report, out / "bench.png")
    print(table(report))
    if any("429" in (part.get("errors") or {}) for part in scenarios.values() if isinstance(part, dict)):
        print(
            "some turns were rate limited (429): start the app with a higher DACA_RATE_LIMIT, e.g. 100000/minute"
        )
    print(f"results: {out / 'bench.json'}" + ("" if args.no_chart else f", {out / 'bench.png'}"))
    return 0


def _run_scenarios(
    args: argparse.Namespace,
    run_id: str,
    workdir: Path,
    load: dict[str, Any],
    single: dict[str, Any],
    scenarios: dict[str, Any],
) -> None:
    wanted = args.scenario_list
    delay = args.model_delay
    if "embedded" in wanted or ("history" in wanted and args.history_backend == "embedded"):
        env = {"DATABASE_URL": f"sqlite:///{workdir / 'embedded.db'}", "DACA_RATE_LIMIT": NO_LIMIT}
        for name in (
            "REDIS_URL",
            "AMQP_URL",
            "GEMINI_API_KEY",
            "UPSTASH_REDIS_REST_URL",
            "UPSTASH_REDIS_REST_TOKEN",
        ):
            env[name] = ""
        with running("kit", env, workdir, model_delay=delay) as server:
            if "embedded" in wanted:
                result = measure(
                    server.base_url, server, label="embedded", user_prefix=f"e{run_id}-u", **load
                )
                result["single_user"] = measure(
                    server.base_url,
                    server,
                    label="embedded, one user",
                    user_prefix=f"e{run_id}-solo",
                    **single,
                )
                scenarios["embedded"] = result
            if "history" in wanted and args.history_backend == "embedded":
                scenarios["history"] = history(args, server, env["DATABASE_URL"], run_id, "embedded")
    needs_real = {"real", "raw", "reviews"} & set(wanted) or (
        "history" in wanted and args.history_backend == "real"
    )
    if not needs_real:
        return
    with scratch_vhost(args.amqp_url) as amqp_url, _database(args) as database_url:
        env = {
            "DATABASE_URL": database_url,
            "REDIS_URL": args.redis_url,
            "AMQP_URL": amqp_url,
            "GEMINI_API_KEY": "",
            "UPSTASH_REDIS_REST_URL": "",
            "UPSTASH_REDIS_REST_TOKEN": "",
            "DACA_RATE_LIMIT": NO_LIMIT,
        }
        if "raw" in wanted:
            with running("raw", env, workdir) as server:
                raw = measure(
                    server.base_url, server, label="raw reference", user_prefix=f"r{run_id}-u", **load
                )
                raw["single_user"] = measure(
                    server.base_url, server, label="raw, one user", user_prefix=f"r{run_id}-solo", **single
                )
                scenarios["raw"] = raw
        if {"real", "history", "reviews"} & set(wanted):
            with running("kit", env, workdir, model_delay=delay) as server:
                if "real" in wanted:
                    real = measure(
                        server.base_url, server, label="real services", user_prefix=f"k{run_id}-u", **load
                    )
                    real["single_user"] = measure(
                        server.base_url,
                        server,
                        label="real, one user",
                        user_prefix=f"k{run_id}-solo",
                        **single,
                    )
                    if "raw" in scenarios and scenarios["raw"]["turns_per_s"]:
                        real["ratio_to_raw"] = round(real["turns_per_s"] / scenarios["raw"]["turns_per_s"], 3)
                    scenarios["real"] = real
                if "history" in wanted and args.history_backend == "real":
                    scenarios["history"] = history(args, server, database_url, run_id, "real")
                if "reviews" in wanted:
                    scenarios["reviews"] = pending_reviews(args, server, run_id)


@contextmanager
def _database(args: argparse.Namespace) -> Iterator[str]:
    if args.database_url:
        yield args.database_url
        return
    with scratch_postgres(args.postgres_admin) as url:
        yield url


def history(
    args: argparse.Namespace, server: Server, database_url: str, run_id: str, backend: str
) -> dict[str, Any]:
    """Turn latency for one user with 10, 1,000, 100,000 stored turns (the history query is bounded)."""
    sizes = [int(s) for s in args.history_sizes.split(",") if s.strip()]
    result: dict[str, Any] = {"backend": backend, "sizes": {}}
    for size in sizes:
        user = f"h{run_id}-{size}"
        started = time.perf_counter()
        seed_history(database_url, user, size)
        seeded = time.perf_counter() - started
        phase = measure(
            server.base_url,
            server,
            label=f"history {size:,}",
            users=1,
            turns=args.history_turns,
            max_seconds=args.max_seconds,
            progress=not args.quiet,
            text=lambda n: f"history message {n}",
            user_prefix=user,
        )
        phase["seed_seconds"] = round(seeded, 2)
        result["sizes"][str(size)] = phase
    if len(sizes) >= 2:
        low, high = result["sizes"][str(min(sizes))], result["sizes"][str(max(sizes))]
        if low["latency_ms"]["p50"] and high["latency_ms"]["p50"]:
            result["p50_ratio_largest_to_smallest"] = round(
                high["latency_ms"]["p50"] / low["latency_ms"]["p50"], 3
            )
    return result


def pending_reviews(args: argparse.Namespace, server: Server, run_id: str) -> dict[str, Any]:
    """Leaves `--reviews` turns pending for `--review-seconds` and counts the backend calls meanwhile."""
    from tqdm.auto import tqdm

    with httpx.Client(base_url=server.base_url, trust_env=False, timeout=30.0) as client:
        held = 0
        for n in range(args.reviews):
            response = client.post(
                "/chat/?wait=0", json={"user_id": f"v{run_id}-{n % 10}", "text": f"urgent case {n}"}
            )
            held += response.status_code == 202
        before = settled_calls(client)
        cpu_before = server.status().get("cpu_ms", 0)
        waited = 0.0
        bar = tqdm(
            total=round(args.review_seconds),
            desc="reviews pending",
            unit="s",
            disable=args.quiet,
            leave=False,
        )
        started = time.monotonic()
        while waited < args.review_seconds:
            time.sleep(min(1.0, args.review_seconds - waited))
            waited = time.monotonic() - started
            bar.n = min(round(waited), bar.total)
            bar.refresh()
        bar.close()
        after = read_calls(client)  # no settling: anything the waiting costs must show up here
        cpu_after = server.status().get("cpu_ms", 0)
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in SERVICE_KEYS}
    total = sum(delta.values())
    return {
        "pending": held,
        "seconds": round(waited, 1),
        "calls_while_waiting": delta,
        "calls_per_second_per_review": round(total / waited / max(1, held), 6) if waited else None,
        "server_cpu_ms_while_waiting": cpu_after - cpu_before,
    }


# -- targets, table, chart ----------------------------------------------------------------------
def targets(scenarios: dict[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    """The issue's targets, with the measured value and whether it was met (reported, not asserted)."""
    rows: list[dict[str, Any]] = []

    def add(name: str, target: str, value: Any, met: bool | None) -> None:
        rows.append({"name": name, "target": target, "value": value, "met": met})

    real = scenarios.get("real")
    if real and "ratio_to_raw" in real:
        add(
            "real services, concurrent users: kit vs raw stack",
            ">= 0.7",
            real["ratio_to_raw"],
            real["ratio_to_raw"] >= 0.7,
        )
    for key in ("real", "embedded"):
        part = scenarios.get(key)
        if part and part.get("single_user"):
            p50 = part["single_user"]["latency_ms"]["p50"]
            p50_model_excluded = None if p50 is None else round(p50 - args.model_delay * 1000, 2)
            add(
                f"{key}: one user p50 (model excluded)",
                "<= 10 ms",
                p50_model_excluded,
                p50_model_excluded is not None and p50_model_excluded <= 10,
            )
    if real:
        calls = real["calls_per_turn"]
        add("Redis commands per turn", "<= 2", calls["counters"], calls["counters"] <= 2)
        add("AMQP publishes per turn", "1", calls["events"], abs(calls["events"] - 1) < 0.05)
    reviews = scenarios.get("reviews")
    if reviews:
        value = reviews["calls_per_second_per_review"]
        add("backend calls per second per pending review", "0", value, value == 0)
    hist = scenarios.get("history")
    if hist and "p50_ratio_largest_to_smallest" in hist:
        value = hist["p50_ratio_largest_to_smallest"]
        add("p50 at the largest history vs the smallest", "<= 1.5", value, value <= 1.5)
    return rows


def table(report: dict[str, Any]) -> str:
    scenarios = report["scenarios"]
    lines = [
        "",
        f"{'scenario':<22}{'users':>6}{'turns':>7}{'turns/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
        f"{'SQL':>6}{'Redis':>6}{'AMQP':>6}{'model':>6}{'RSS MiB':>8}{'CPU ms':>8}",
    ]

    def row(name: str, part: dict[str, Any]) -> None:
        lat, calls = part["latency_ms"], part.get("calls_per_turn", {})
        server = part.get("server") or {}
        rss = server.get("rss_kib")
        lines.append(
            f"{name:<22}{part['users']:>6}{part['turns_ok']:>7}{part['turns_per_s'] or 0:>9.1f}"
            f"{lat['p50'] or 0:>9.2f}{lat['p95'] or 0:>9.2f}{lat['p99'] or 0:>9.2f}"
            f"{calls.get('database', 0):>6.2f}{calls.get('counters', 0):>6.2f}{calls.get('events', 0):>6.2f}"
            f"{calls.get('model', 0):>6.2f}{(rss or 0) / 1024:>8.1f}{server.get('cpu_ms_per_turn') or 0:>8.2f}"
        )

    for key in ("embedded", "real", "raw", "external"):
        part = scenarios.get(key)
        if part:
            row(key, part)
            if part.get("single_user"):
                row(f"{key}, one user", part["single_user"])
    hist = scenarios.get("history")
    if hist:
        for size, part in hist["sizes"].items():
            row(f"history {int(size):,} ({hist['backend']})", part)
    if scenarios.get("real", {}).get("ratio_to_raw") is not None:
        lines.append(f"kit / raw stack (real services, turns/s): {scenarios['real']['ratio_to_raw']:.2f}")
    reviews = scenarios.get("reviews")
    if reviews:
        lines.append(
            f"{reviews['pending']} reviews pending for {reviews['seconds']} s: calls {reviews['calls_while_waiting']}, "
            f"{reviews['calls_per_second_per_review']} calls/s per review"
        )
    lines.append("")
    for t in report.get("targets", []):
        mark = "met" if t["met"] else "MISSED"
        lines.append(f"  [{mark:>6}] {t['name']}: {t['value']} (target {t['target']})")
    return "\n".join(lines)


def chart(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = report["scenarios"]
    loads = [(k, scenarios[k]) for k in ("embedded", "real", "raw", "external") if k in scenarios]
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    ax = axes[0][0]
    ax.bar([k for k, _ in loads], [p["turns_per_s"] or 0 for _, p in loads], color="#4c72b0")
    ax.set_title("throughput (turns/s)")
    ax = axes[0][1]
    width = 0.25
    for i, q in enumerate(("p50", "p95", "p99")):
        ax.bar(
            [j + i * width for j in range(len(loads))],
            [p["latency_ms"][q] or 0 for _, p in loads],
            width,
            label=q,
        )
    ax.set_xticks([j + width for j in range(len(loads))], [k for k, _ in loads])
    ax.set_title("latency under load (ms)")
    ax.legend()
    ax = axes[1][0]
    hist = scenarios.get("history")
    if hist:
        sizes = sorted(int(s) for s in hist["sizes"])
        ax.plot(sizes, [hist["sizes"][str(s)]["latency_ms"]["p50"] for s in sizes], "o-", label="p50")
        ax.plot(sizes, [hist["sizes"][str(s)]["latency_ms"]["p95"] for s in sizes], "s--", label="p95")
        ax.set_xscale("log")
        ax.set_ylim(bottom=0)
        ax.legend()
    else:
        ax.axis("off")
        ax.text(0.5, 0.5, "history scenario not run\n(--scenarios history)", ha="center", va="center")
    ax.set_title("one user: latency (ms) vs stored turns")
    ax = axes[1][1]
    for i, (key, part) in enumerate(loads):
        calls = part.get("calls_per_turn", {})
        ax.bar(
            [j + i * 0.2 for j in range(len(SERVICE_KEYS))],
            [calls.get(k, 0) for k in SERVICE_KEYS],
            0.2,
            label=key,
        )
    ax.set_xticks(
        [j + 0.2 for j in range(len(SERVICE_KEYS))], [CALL_NAMES[k] for k in SERVICE_KEYS], fontsize=8
    )
    ax.set_title("backend calls per turn")
    if loads:
        ax.legend()
    fig.suptitle(f"daca-kit bench {report['started_at']}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
