"""The kit's chat-turn workflow on DBOS, beside the kit's own local runtime: a measured comparison.

A study script, not part of the package (`dbos` is in none of the kit's locks). In a venv of its own:

    python3.11 -m venv /tmp/dbos-venv
    /tmp/dbos-venv/bin/pip install --require-hashes -r requirements.lock
    /tmp/dbos-venv/bin/pip install dbos==3.4.0 && /tmp/dbos-venv/bin/pip install --no-deps -e .
    /tmp/dbos-venv/bin/python docs/dbos-driver.py all --out build/dbos-compare.json

It needs the local Postgres as superuser `postgres` over loopback (it creates and drops private databases
named `dbosbench_*`) and read access to the server log (path in `PG_LOG`). Results: docs/dbos-evaluation.md.

`DbosRuntime` implements the kit's `WorkflowRuntime` port on DBOS (PyPI `dbos`), so `Kit.submit` and
`kit.reviews.decide` run unchanged on either engine. The workflow definition is the kit's own `chat_turn`
generator: a DBOS workflow drives it, running each yielded activity as a DBOS step (`DBOS.run_step`),
and the review's race of a `review_decision` event against the review timer as
`DBOS.recv(topic, timeout_seconds)`. A decision is written by the kit to its workflow inbox in the
decision's own transaction (as in Dapr mode); `notify` then hands it to `DBOS.send` and deletes it.

Each measurement runs in a child process on a fresh private database (`run` subcommand), so both
engines see the same Postgres, the same activities (SQL store, SQL counters, in-process bus, offline
model) and the same callers. SQL statements are counted by Postgres itself (`log_statement = 'all'`
set on the private database only, read back from the server log by database name).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from daca_kit.adapters.local_runtime import ActivityTask, EventTask, TimerTask, WhenAnyTask, WorkflowContext
from daca_kit.bootstrap import bootstrap
from daca_kit.core.clock import iso, parse_iso, utcnow
from daca_kit.core.models import COMPLETED, FAILED, RUNNING, Backend, InstanceState
from daca_kit.core.workflow import REVIEW_EVENT, WORKFLOW_NAME, chat_turn
from daca_kit.settings import Settings

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_LOG = Path(os.environ.get("PG_LOG", "/var/log/postgresql/postgresql-15-main.log"))


# -- the workflow's context on DBOS ----------------------------------------------------------------------
class DbosContext(WorkflowContext):
    """The local runtime's context and tasks (so `when_any` races them as it does there). Its clock is the
    time each recorded step ended, so a replay sees the same times; custom status stays in this process."""

    def __init__(self, runtime: DbosRuntime, instance_id: str, now: datetime) -> None:
        super().__init__(instance_id, now)
        self.runtime = runtime

    def set_custom_status(self, status: str) -> None:
        super().set_custom_status(status)
        self.runtime._set_status(self.instance_id, status)


# -- the runtime ---------------------------------------------------------------------------------------
class DbosRuntime:
    """The kit's `WorkflowRuntime` port on DBOS (one DBOS instance per process)."""

    name = "dbos"
    backend = Backend("dbos", "dbos", "DBOS durable workflows", embedded=False)

    def __init__(
        self,
        kit: Any,
        database_url: str,
        *,
        listen_notify: bool = True,
        pre_ping: bool = True,
        pool_size: int = 10,
    ) -> None:
        from dbos import DBOS

        self.kit = kit
        self.activities = kit.activities.as_dict()
        self._status: dict[str, str] = {}
        self._waiting: set[str] = set()  # instances whose workflow reached `recv`
        self._done: dict[str, InstanceState] = {}
        self._changed = threading.Condition()
        self._listeners: list[Any] = []
        self.DBOS = DBOS
        DBOS(
            config={
                "name": "daca-kit-dbos",
                "system_database_url": database_url,
                "use_listen_notify": listen_notify,
                "sys_db_pool_size": pool_size,
                # DBOS's default engine pings every connection it checks out; the kit's does not.
                **({} if pre_ping else {"db_engine_kwargs": {"pool_pre_ping": False, "max_overflow": 0}}),
                "log_level": "WARNING",
            }
        )
        runtime = self

        def run_activity(name: str, data: Any) -> dict[str, Any]:
            result = runtime.activities[name](None, data)
            return {"result": result, "at": iso(utcnow())}

        @DBOS.workflow(name=WORKFLOW_NAME)
        def dbos_chat_turn(turn: dict[str, Any], started_at: str) -> dict[str, Any]:
            instance_id = DBOS.workflow_id
            assert instance_id is not None
            ctx = DbosContext(runtime, instance_id, parse_iso(started_at))
            gen = chat_turn(ctx, turn)  # type: ignore[arg-type]
            send: Any = None
            try:
                while True:
                    task = gen.send(send)
                    if isinstance(task, ActivityTask):
                        out = DBOS.run_step({"name": task.name}, run_activity, task.name, task.input)
                        ctx._now = parse_iso(out["at"])
                        task._complete(out["result"])
                        send = out["result"]
                    elif isinstance(task, WhenAnyTask):
                        event = next(t for t in task.tasks if isinstance(t, EventTask))
                        timer = next(t for t in task.tasks if isinstance(t, TimerTask))
                        left = max(0.0, (timer.fire_at - ctx._now).total_seconds())
                        runtime._now_waiting(instance_id)
                        message = DBOS.recv(event.name, timeout_seconds=left)
                        if message is None:
                            timer._complete(None)
                            send = timer
                        else:
                            ctx._now = parse_iso(message["at"])
                            event._complete(message)
                            send = event
                        task._complete(send)
                    else:
                        raise TypeError(f"the driver cannot run {type(task).__name__}")
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]

        self._workflow = dbos_chat_turn

    # lifecycle
    def start(self) -> None:
        self.DBOS.launch()

    def close(self) -> None:
        self.DBOS.destroy(destroy_registry=True)

    def ping(self) -> None:
        pass

    def on_change(self, listener: Any) -> None:
        self._listeners.append(listener)

    def _now_waiting(self, instance_id: str) -> None:
        with self._changed:
            self._waiting.add(instance_id)
            self._changed.notify_all()

    def _set_status(self, instance_id: str, status: str) -> None:
        with self._changed:
            self._status[instance_id] = status
            self._changed.notify_all()

    # the port
    def schedule(self, name: str, instance_id: str, input: dict[str, Any]) -> InstanceState:
        from dbos import SetWorkflowID

        started = utcnow()
        state = InstanceState(instance_id=instance_id, name=name, input=input, created_at=started)
        with SetWorkflowID(instance_id):
            handle = self.DBOS.start_workflow(self._workflow, input, iso(started))
        handle.future.add_done_callback(lambda f: self._on_done(state, f))
        with self._changed:
            while instance_id not in self._done and instance_id not in self._waiting:
                self._changed.wait()
            if instance_id in self._done:
                return self._done.pop(instance_id)  # a finished turn is read back from its row
        state.custom_status = "pending_review"
        return state

    def _on_done(self, state: InstanceState, future: Any) -> None:
        try:
            output = future.result()
        except Exception as exc:  # noqa: BLE001 - the workflow failed: the turn fails
            output = {"status": "failed", "reply": None, "error": f"The turn failed: {exc}"}
        self._finished(state, output)

    def _finished(self, state: InstanceState, output: dict[str, Any]) -> InstanceState:
        state.output = output
        state.runtime_status = FAILED if output.get("status") == "failed" else COMPLETED
        state.custom_status = output.get("status")
        with self._changed:
            self._status.pop(state.instance_id, None)
            self._waiting.discard(state.instance_id)
            self._done[state.instance_id] = state
            self._changed.notify_all()
        for listener in self._listeners:
            listener(state)
        return state

    def get(self, instance_id: str) -> InstanceState | None:
        with self._changed:
            if instance_id in self._done:
                return self._done[instance_id]
            status = self._status.get(instance_id)
        if status is not None:
            return InstanceState(instance_id=instance_id, name=WORKFLOW_NAME, input={}, custom_status=status)
        info = self.DBOS.get_workflow_status(instance_id)
        if info is None:
            return None
        state = InstanceState(instance_id=instance_id, name=WORKFLOW_NAME, input={}, runtime_status=RUNNING)
        if info.status == "SUCCESS":
            return self._finished(state, self.DBOS.retrieve_workflow(instance_id).get_result())
        state.custom_status = "pending_review"
        return state

    def notify(self, instance_id: str) -> None:
        """Hands the decisions in the kit's inbox to DBOS.send, then deletes them."""
        inbox = self.kit.stores.workflows
        events = [e for e in inbox.events(instance_id) if e["name"] == REVIEW_EVENT]
        for event in events:
            payload = {**event["payload"], "at": iso(utcnow())}
            self.DBOS.send(instance_id, payload, REVIEW_EVENT, idempotency_key=f"wfevent-{event['id']}")
        inbox.delete_events([e["id"] for e in events])

    def wait(self, instance_id: str, timeout: float) -> InstanceState | None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while instance_id not in self._done:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
        return self.get(instance_id)

    async def wait_async(self, instance_id: str, timeout: float) -> InstanceState | None:
        import asyncio

        return await asyncio.to_thread(self.wait, instance_id, timeout)


# -- measurements (each in a child process, `run`) ------------------------------------------------------
PLAIN = "Hello there, how is the weather today?"
SENSITIVE = "This is urgent, please answer"


def db_url(db: str) -> str:
    return f"postgresql://postgres@127.0.0.1:5432/{db}"


def make_kit(engine: str, db: str) -> Any:
    settings = Settings(_env_file=None, database_url=db_url(db), rate_limit="0/minute")  # type: ignore[call-arg]
    kit = bootstrap(settings)
    if engine != "local":
        kit.runtime = kit.reviews.runtime = DbosRuntime(
            kit, db_url(db), listen_notify=(engine != "dbos-poll"), pre_ping=(engine != "dbos-noping")
        )
    return kit.start()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def load(kit: Any, callers: int, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def caller(i: int) -> None:
        mine: list[float] = []
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            try:
                result = kit.submit(f"user-{i}", PLAIN)
                ok = result.status == "completed"
            except Exception:  # noqa: BLE001 - counted
                ok = False
            if ok:
                mine.append(time.perf_counter() - t0)
            else:
                with lock:
                    errors[0] += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(callers)]
    t0, cpu0 = time.monotonic(), time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed, cpu = time.monotonic() - t0, time.process_time() - cpu0
    return {
        "callers": callers,
        "seconds": round(elapsed, 2),
        "turns": len(latencies),
        "errors": errors[0],
        "turns_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(pct(latencies, 0.50) * 1000, 2),
        "p99_ms": round(pct(latencies, 0.99) * 1000, 2),
        "app_cpu_ms_per_turn": round(cpu * 1000 / max(1, len(latencies)), 2),
    }


_LINE = re.compile(r"^\S+ \S+ UTC \[\d+\] \S*@(\S+) LOG:  (?:statement|execute [^:]*): (.*)$")


class StatementLog:
    """Statements Postgres logged for one database (log_statement = 'all' on that database only)."""

    def __init__(self, db: str) -> None:
        self.db = db
        self.offset = PG_LOG.stat().st_size

    def take(self) -> list[str]:
        with PG_LOG.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        found: list[str] = []
        current: list[str] | None = None
        for line in data.decode("utf-8", "replace").splitlines():
            if line.startswith("\t") and current is not None:
                current.append(line.strip())  # a multi-line statement goes on
                continue
            if current is not None:
                found.append(" ".join(current))
                current = None
            m = _LINE.match(line)
            if m and m.group(1) == self.db:
                current = [m.group(2).strip()]
        if current is not None:
            found.append(" ".join(current))
        return found


def categories(statements: list[str]) -> dict[str, int]:
    """transaction control, pool pre-ping (";"), DBOS's own tables, the kit's tables."""
    found: Counter[str] = Counter()
    for text in statements:
        if text.startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            found["transaction"] += 1
        elif text == ";":
            found["pre_ping"] += 1
        elif "dbos." in text or "advisory" in text or text.startswith("DEALLOCATE"):
            found["dbos_tables"] += 1
        else:
            found["kit_tables"] += 1
    return dict(found)


def settle(seconds: float = 1.5) -> None:
    time.sleep(seconds)


def connections(db: str) -> int:
    with psycopg.connect(ADMIN_URL, autocommit=True) as c:
        row = c.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (db,)).fetchone()
        return int(row[0]) if row else 0


def phase_bench(kit: Any, args: argparse.Namespace) -> dict[str, Any]:
    load(kit, 2, 2.0)  # warm-up: pools, caches
    return {"runs": [load(kit, n, args.seconds) for n in (1, 8)]}


def phase_count(kit: Any, args: argparse.Namespace) -> dict[str, Any]:
    for i in range(20):
        kit.submit(f"warm-{i % 4}", PLAIN)
    review_turn(kit)
    settle()
    log = StatementLog(args.db)
    log.take()
    n = 200
    t0 = time.monotonic()
    for i in range(n):
        kit.submit(f"user-{i % 8}", PLAIN)
    plain_s = time.monotonic() - t0
    plain = log.take()
    m = 20
    t0 = time.monotonic()
    lags = [review_turn(kit) for _ in range(m)]
    review_s = time.monotonic() - t0
    reviewed = log.take()
    return {
        "plain_turns": n,
        "plain_statements": len(plain),
        "plain_per_turn": round(len(plain) / n, 2),
        "plain_seconds": round(plain_s, 2),
        "plain_categories": categories(plain),
        "plain_top": Counter(t[:90] for t in plain).most_common(25),
        "review_turns": m,
        "review_statements": len(reviewed),
        "review_per_turn": round(len(reviewed) / m, 2),
        "review_seconds": round(review_s, 2),
        "decision_to_reply_ms": {"p50": round(pct(lags, 0.5) * 1000, 1), "max": round(max(lags) * 1000, 1)},
        "review_categories": categories(reviewed),
        "review_top": Counter(t[:90] for t in reviewed).most_common(40),
    }


def review_turn(kit: Any) -> float:
    """A sensitive turn, approved at once; returns decision-to-reply seconds."""
    result = kit.submit("reviewed-user", SENSITIVE)
    assert result.status == "pending_review", result
    t0 = time.perf_counter()
    kit.reviews.decide(result.instance_id, approved=True, reviewer="bench")
    done = kit.wait_turn_sync(result.instance_id, 10)
    assert done is not None and done.status == "completed", done
    return time.perf_counter() - t0


def phase_idle(kit: Any, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"seconds": args.seconds, "stages": []}
    pending: list[str] = []
    settle(3.0)
    log = StatementLog(args.db)
    for want in (0, 1, 10):
        while len(pending) < want:
            pending.append(kit.submit(f"waiting-{len(pending)}", SENSITIVE).instance_id)
        settle()
        log.take()
        time.sleep(args.seconds)
        seen = log.take()
        out["stages"].append(
            {
                "pending_reviews": want,
                "statements": len(seen),
                "per_minute": round(len(seen) * 60 / args.seconds, 1),
                "categories": categories(seen),
                "top": Counter(t[:90] for t in seen).most_common(12),
                "threads": threading.active_count(),
                "connections": connections(args.db),
            }
        )
    lags = []
    for instance_id in pending:
        t0 = time.perf_counter()
        kit.reviews.decide(instance_id, approved=True, reviewer="bench")
        done = kit.wait_turn_sync(instance_id, 10)
        assert done is not None and done.status == "completed", done
        lags.append(time.perf_counter() - t0)
    out["decision_to_reply_ms"] = {"p50": round(pct(lags, 0.5) * 1000, 1), "max": round(max(lags) * 1000, 1)}
    return out


def phase_hold(kit: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Worker A: starts sensitive turns, prints their ids, then waits for each (as a REST request would)."""
    ids = [kit.submit(f"held-{i}", SENSITIVE).instance_id for i in range(args.count)]
    print(json.dumps({"ids": ids}), flush=True)
    done: dict[str, Any] = {}

    def waiter(instance_id: str) -> None:
        result = kit.wait_turn_sync(instance_id, args.seconds)
        done[instance_id] = {"at": time.time(), "status": result.status if result else None}

    threads = [threading.Thread(target=waiter, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"done": done}


def phase_decide(kit: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Worker B: decides the turns worker A started; with --recover, then finds and resumes A's turns."""
    ids = args.ids.split(",")
    decided = {}
    for instance_id in ids:
        decided[instance_id] = time.time()
        kit.reviews.decide(instance_id, approved=True, reviewer="worker-b")
    out: dict[str, Any] = {"decided": decided}

    def stored() -> dict[str, str]:
        rows = {i: kit.stores.conversations.turn_by_instance(i) for i in ids}
        return {i: "stored" if row else "not stored" for i, row in rows.items()}

    time.sleep(1.0)  # a worker stays up: let it resume what the decisions woke before it closes
    if args.recover:
        time.sleep(2.0)
        out["after_3s"] = stored()
        if args.engine != "local":
            t0 = time.time()
            handles = kit.runtime.DBOS._recover_pending_workflows(
                [args.recover]
            )  # 3.4.0 has no public call for this
            for h in handles:
                h.get_result()
            out["recover_call_s"] = round(time.time() - t0, 3)
            out["after_recover"] = stored()
    return out


def run(args: argparse.Namespace) -> None:
    kit = make_kit(args.engine, args.db)
    try:
        phase = {
            "bench": phase_bench,
            "count": phase_count,
            "idle": phase_idle,
            "hold": phase_hold,
            "decide": phase_decide,
        }[args.phase]
        result = {"engine": args.engine, "phase": args.phase, **phase(kit, args)}
    finally:
        kit.close()
    print(json.dumps(result))


# -- the orchestrator ---------------------------------------------------------------------------------
def fresh_database(name: str, *, log_statements: bool) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{name}"')
        if log_statements:
            c.execute(f"ALTER DATABASE \"{name}\" SET log_statement = 'all'")


def drop_database(name: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def child(engine: str, phase: str, seconds: float) -> dict[str, Any]:
    db = f"dbosbench_{engine.replace('-', '_')}_{phase}"
    fresh_database(db, log_statements=phase != "bench")
    try:
        cmd = [sys.executable, __file__, "run", engine, phase, "--db", db, "--seconds", str(seconds)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"{engine} {phase} failed:\n{proc.stderr[-3000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        drop_database(db)


def two_workers(engine: str, wait_s: float) -> dict[str, Any]:
    """A decision taken in worker B for turns waiting in worker A; then worker A killed with turns pending."""
    db = f"dbosbench_{engine.replace('-', '_')}_cross"
    fresh_database(db, log_statements=False)
    base = [sys.executable, __file__, "run", engine]
    try:
        a = subprocess.Popen(
            [*base, "hold", "--db", db, "--count", "5", "--seconds", str(wait_s)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "DBOS__VMID": "worker-a"},
        )
        assert a.stdout is not None
        ids = json.loads(a.stdout.readline())["ids"]
        b = _child_json([*base, "decide", "--db", db, "--ids", ",".join(ids)], "worker-b")
        held = json.loads(a.communicate(timeout=120)[0].strip().splitlines()[-1])
        lags = [held["done"][i]["at"] - b["decided"][i] for i in ids]
        out: dict[str, Any] = {
            "engine": engine,
            "phase": "two_workers",
            "waiter_wait_s": wait_s,
            "decision_in_b_to_reply_in_a_ms": [round(x * 1000) for x in lags],
            "statuses_in_a": [held["done"][i]["status"] for i in ids],
        }
        k = subprocess.Popen(
            [*base, "hold", "--db", db, "--count", "3", "--seconds", "60"],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "DBOS__VMID": "worker-a"},
        )
        assert k.stdout is not None
        ids = json.loads(k.stdout.readline())["ids"]
        time.sleep(0.5)
        k.kill()  # SIGKILL, with three reviews pending
        k.wait()
        b = _child_json(
            [*base, "decide", "--db", db, "--ids", ",".join(ids), "--recover", "worker-a"], "worker-b"
        )
        out["killed_a_then_decided_in_b"] = {
            "after_3s": sorted(b["after_3s"].values()),
            "after_recover_call": sorted((b.get("after_recover") or {}).values()),
            "recover_call_s": b.get("recover_call_s"),
        }
        return out
    finally:
        drop_database(db)


def _child_json(cmd: list[str], executor: str) -> dict[str, Any]:
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=120, env={**os.environ, "DBOS__VMID": executor}
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("engine", choices=["local", "dbos", "dbos-noping", "dbos-poll"])
    r.add_argument("phase", choices=["bench", "count", "idle", "hold", "decide"])
    r.add_argument("--count", type=int, default=5)
    r.add_argument("--ids", default="")
    r.add_argument("--recover", default="")
    r.add_argument("--db", required=True)
    r.add_argument("--seconds", type=float, default=10.0)
    a = sub.add_parser("all")
    a.add_argument("--phases", default="bench,count,idle")
    a.add_argument("--engines", default="local,dbos,dbos-noping,dbos-poll")
    a.add_argument("--bench-seconds", type=float, default=10.0)
    a.add_argument("--idle-seconds", type=float, default=30.0)
    a.add_argument("--out", default="build/dbos-compare.json")
    args = parser.parse_args()
    if args.cmd == "run":
        run(args)
        return
    results = []
    for phase in args.phases.split(","):
        for engine in args.engines.split(","):
            if phase == "two_workers":
                if engine in ("local", "dbos"):
                    print(f"{phase} {engine} ...", file=sys.stderr, flush=True)
                    results.append(two_workers(engine, 5.0))
                continue
            if phase == "bench" and engine == "dbos-poll":
                continue  # the same engine as dbos on the turn's path
            seconds = args.bench_seconds if phase == "bench" else args.idle_seconds
            print(f"{phase} {engine} ...", file=sys.stderr, flush=True)
            results.append(child(engine, phase, seconds))
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
