"""Sustained throughput: turns answered *and* counted, the backlog when the load stops, the event lag.

    with Counted(CountSource(database_url, redis_url, amqp_url, side="kit"), users) as counted:
        ...warm-up...; counted.settle()
        started = time.time(); ...load...; counted.stopped(started)
        figures = counted.report(drain_timeout=30)

A turn is *counted* once its user's counter (Redis `message_count:{user}` for the kit, `raw_count:{user}`
for the raw reference) covers it: the k-th stored turn of a user is counted at the first moment that
user's counter reads k or more. A poller in its own process (so the load generator's CPU use cannot
delay it) reads every user's counter with one MGET every `interval` seconds and keeps the moments each
value was first seen. After the load, one query reads each stored turn's commit-side time (the kit's
`conversation.timestamp`, taken just before its INSERT transaction; the raw reference's `ts`, the
transaction's `now()`) and the moment the client got its answer: the commit lies between the two, so
the **event lag**, commit to counted, is bracketed: `event_lag_ms` from the stored time (an upper bound:
under load the turn may wait for a database connection after it took that time) and
`answer_to_counted_ms` from the answer (a lower bound), both with the poll interval as resolution.
Counters are monotonic, so a user's events counted out of order still give each of its turns a time.

When the load stops it records the outbox rows not yet published (kit), the messages ready in the
counting queue, the database sessions opened during the load (Postgres's `pg_stat_database`: a server
whose pool closes and reopens connections under load pays a connect each time), and how many of the phase's answered turns were not counted yet; then it waits until
every counter equals its user's stored turns (counts exact) and reports how long that took. The
sustained rate is the phase's turns counted by the time the load stopped, per second of load: work
left for later does not count.
"""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from daca_kit.core.analytics import CONSUMER, COUNT_KEY
from daca_kit.core.workflow import MESSAGES_TOPIC
from daca_kit.ops.bench.load import percentiles
from daca_kit.ops.bench.raw import COUNT_KEY as RAW_COUNT_KEY
from daca_kit.ops.bench.raw import QUEUE as RAW_QUEUE

POLL_INTERVAL = 0.01


@dataclass(frozen=True)
class CountSource:
    """Where one side stores its turns and keeps its counts, on the run's services."""

    database_url: str
    redis_url: str
    amqp_url: str
    side: str = "kit"  # "kit" or "raw", a key of SIDES

    @property
    def count_key(self) -> str:  # format string of a user's counter key
        return SIDES[self.side]["count_key"]

    @property
    def turns_sql(self) -> str:  # (user_id, epoch seconds) of the given users' turns, oldest first
        return SIDES[self.side]["turns_sql"]

    @property
    def queue(self) -> str:  # the durable queue the counting consumer reads
        return SIDES[self.side]["queue"]

    @property
    def outbox_sql(self) -> str | None:  # rows waiting to be published (None: the side has no outbox)
        return SIDES[self.side].get("outbox_sql")


SIDES: dict[str, dict[str, str]] = {
    "kit": {
        "count_key": COUNT_KEY,
        "turns_sql": "SELECT user_id, EXTRACT(EPOCH FROM timestamp)::float8 FROM conversation "
        "WHERE user_id = ANY(%s) ORDER BY id",
        "queue": f"{CONSUMER}-{MESSAGES_TOPIC}",
        "outbox_sql": "SELECT count(*) FROM outbox",
    },
    "raw": {
        "count_key": RAW_COUNT_KEY,
        "turns_sql": "SELECT user_id, EXTRACT(EPOCH FROM ts)::float8 FROM raw_turn "
        "WHERE user_id = ANY(%s) ORDER BY id",
        "queue": RAW_QUEUE,
    },
}


def poll_counts(redis_url: str, keys: list[str], interval: float, conn: Connection) -> None:
    """The poller process: records when each key's value was first seen; answers "now" and "stop"."""
    import redis

    client = redis.Redis.from_url(redis_url)
    seen: list[list[tuple[int, float]]] = [[] for _ in keys]
    latest = [0] * len(keys)
    conn.send("ready")
    while True:
        values = client.mget(keys)
        now = time.time()
        for i, raw in enumerate(values):
            value = int(raw or 0)
            if not seen[i] or value != seen[i][-1][0]:
                seen[i].append((value, now))
            latest[i] = value
        if conn.poll(interval):
            command = conn.recv()
            if command == "now":
                conn.send((now, list(latest)))
            else:
                conn.send(seen)
                client.close()
                return


@dataclass(frozen=True)
class TurnLag:
    """One stored turn of the phase: when it was stored, answered (None: unknown), counted (None: never)."""

    stored: float
    answered: float | None
    counted: float | None


def turn_lags(
    turns: dict[str, list[float]],
    seen: dict[str, list[tuple[int, float]]],
    since: float,
    answered: dict[str, list[float]] | None = None,
) -> list[TurnLag]:
    """Each user's turns stored at or after `since`, with when they were answered and counted.

    `turns[user]` are the times of the user's stored turns, oldest first; `seen[user]` the (value, first
    seen at) of its counter: the k-th turn is counted when a value >= k was first seen. `answered[user]`
    are the times the client got the phase's answers, in order: a simulated user sends its next turn only
    after the last one was answered, so the k-th answer is the k-th turn of the phase (when their numbers
    differ, e.g. after an error, the user's answer times are left out)."""
    out: list[TurnLag] = []
    for user, times in turns.items():
        changes = seen.get(user, [])
        first = next((k for k, t in enumerate(times) if t >= since), len(times))
        answers = (answered or {}).get(user, [])
        if len(answers) != len(times) - first:
            answers = []
        for k in range(first, len(times)):
            counted = next((at for value, at in changes if value >= k + 1), None)
            out.append(TurnLag(times[k], answers[k - first] if answers else None, counted))
    return out


def summarize(lags: list[TurnLag], *, stopped_at: float, seconds: float) -> dict[str, Any]:
    """The phase's counted turns, the sustained rate and the event lag (ms) from `turn_lags`.

    The commit of a turn lies between its stored time (taken just before its INSERT) and its answer, so
    `event_lag_ms` (from the stored time) is an upper bound of commit-to-counted and
    `answer_to_counted_ms` a lower bound (what a user sees: the count lands this long after the reply)."""
    counted_in_run = sum(1 for t in lags if t.counted is not None and t.counted <= stopped_at)
    return {
        "turns_stored": len(lags),
        "counted_by_stop": counted_in_run,
        "not_counted_at_stop": len(lags) - counted_in_run,
        "never_counted": sum(1 for t in lags if t.counted is None),
        "sustained_turns_per_s": round(counted_in_run / seconds, 1) if seconds else None,
        "event_lag_ms": percentiles(
            [max(0.0, t.counted - t.stored) * 1000 for t in lags if t.counted is not None]
        ),
        "answer_to_counted_ms": percentiles(
            [
                max(0.0, t.counted - t.answered) * 1000
                for t in lags
                if t.counted is not None and t.answered is not None
            ]
        ),
    }


class Counted:
    """Follows one phase's users' counters (see the module docstring)."""

    def __init__(self, source: CountSource, users: list[str], *, interval: float = POLL_INTERVAL) -> None:
        self.source = source
        self.users = list(users)
        self.interval = interval
        self._conn: Connection | None = None
        self._proc: Any = None
        self._db: Any = None
        self.stop_figures: dict[str, Any] = {}
        self._since = 0.0
        self._stopped_at = 0.0
        self._sessions: int | None = None

    def __enter__(self) -> Counted:
        import psycopg

        self._db = psycopg.connect(self.source.database_url.replace("+psycopg", ""), autocommit=True)
        context = multiprocessing.get_context("spawn")  # no fork of a process with threads
        parent, child = context.Pipe()
        keys = [self.source.count_key.format(u) for u in self.users]
        self._proc = context.Process(
            target=poll_counts, args=(self.source.redis_url, keys, self.interval, child), daemon=True
        )
        self._proc.start()
        self._conn = parent
        if not parent.poll(30) or parent.recv() != "ready":
            raise RuntimeError("the counter poller did not start")
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._proc is not None and self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(5)
        if self._db is not None:
            self._db.close()

    # -- what the phase calls --------------------------------------------------------------------
    def now(self) -> tuple[float, dict[str, int]]:
        assert self._conn is not None
        self._conn.send("now")
        at, values = self._conn.recv()
        return at, dict(zip(self.users, values, strict=True))

    def stored(self) -> dict[str, list[float]]:
        """Commit times of the users' stored turns, oldest first."""
        rows = self._db.execute(self.source.turns_sql, (self.users,)).fetchall()
        turns: dict[str, list[float]] = {u: [] for u in self.users}
        for user, epoch in rows:
            turns[user].append(float(epoch))
        return turns

    def settle(self, timeout: float = 30.0) -> float | None:
        """Waits until every counter equals its user's stored turns; seconds it took, None if never."""
        started = time.monotonic()
        expected = {u: len(t) for u, t in self.stored().items()}
        while time.monotonic() - started < timeout:
            _at, values = self.now()
            if all(values[u] >= n for u, n in expected.items()):
                return round(time.monotonic() - started, 3)
            time.sleep(self.interval)
        return None

    def started(self) -> float:
        """Called as the load starts: returns the time, and notes the database's sessions so far."""
        self._sessions = self._database_sessions()
        return time.time()

    def stopped(self, since: float) -> dict[str, Any]:
        """Called the moment the load stops (`since`: from `started`): the backlog figures."""
        self._stopped_at = time.time()
        self._since = since
        figures: dict[str, Any] = {
            "outbox_rows": None,
            "queue_ready": self._queue_depth(),
            "new_db_sessions": None,  # connections the servers opened during the load (pool churn)
        }
        if self.source.outbox_sql:
            figures["outbox_rows"] = int(self._db.execute(self.source.outbox_sql).fetchone()[0])
        sessions = self._database_sessions()
        if sessions is not None and self._sessions is not None:
            figures["new_db_sessions"] = sessions - self._sessions
        self.stop_figures = figures
        return figures

    def _database_sessions(self) -> int | None:
        """Sessions the database has seen (Postgres 14 and later; None elsewhere)."""
        try:
            row = self._db.execute(
                "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
            ).fetchone()
        except Exception:  # noqa: BLE001 - an optional figure
            return None
        return int(row[0]) if row and row[0] is not None else None

    def report(
        self, *, seconds: float, answered: dict[str, list[float]] | None = None, drain_timeout: float = 30.0
    ) -> dict[str, Any]:
        """After `stopped`: waits for exact counts, then the sustained figures and the lag."""
        exact_after = self.settle(drain_timeout)
        drained = None if exact_after is None else round(time.time() - self._stopped_at, 3)
        turns = self.stored()
        _at, values = self.now()
        assert self._conn is not None
        self._conn.send("stop")
        seen_list = self._conn.recv()
        self._proc.join(5)
        seen = dict(zip(self.users, seen_list, strict=True))
        lags = turn_lags(turns, seen, self._since, answered)
        out = summarize(lags, stopped_at=self._stopped_at, seconds=seconds)
        out["at_stop"] = self.stop_figures
        out["seconds_to_exact_counts"] = drained
        out["overcounted"] = sum(max(0, values[u] - len(t)) for u, t in turns.items())
        out["poll_interval_ms"] = round(self.interval * 1000, 1)
        return out

    def _queue_depth(self) -> int | None:
        import pika

        try:
            connection = pika.BlockingConnection(pika.URLParameters(self.source.amqp_url))
        except Exception:  # noqa: BLE001 - the figure is optional
            return None
        try:
            declared = connection.channel().queue_declare(queue=self.source.queue, passive=True)
            return int(declared.method.message_count)
        except Exception:  # noqa: BLE001
            return None
        finally:
            if connection.is_open:
                connection.close()
