"""What the local runtime shares with the other processes of its app: leases on instances, and wake-ups.

    peers = Peers(store, wakeups, owner=new_id())
    if peers.claim(instance_id): ...step...; peers.release(instance_id)   # one process runs each step
    peers.announce(state)                                                  # after each saved step

Several processes (`WEB_CONCURRENCY` workers, or replicas) share one database. A review decision resumes
its turn in the process that took it, and a due timer is armed in every process: before a step that does
work, a process leases the instance (`WorkflowStore.claim`), so each step runs once; a process that finds
the lease taken looks again a little later (backing off), and a lease left by a killed process expires
after `lease_seconds`. After each saved step the process announces it (`WakeUps`): the others wake their
waiters (a REST wait, the Chat tab) and arm the instance's timer, so a decision taken anywhere is seen
everywhere at once. While the wake-up backend is down, waiters re-check the database every
`recheck_seconds` instead; when it is back, each process re-reads the waiting instances once.
"""

from __future__ import annotations

import threading

from daca_kit.core.clock import iso
from daca_kit.core.models import InstanceState
from daca_kit.core.ports import WakeUps, WorkflowStore


class Peers:
    """Leases and wake-ups for one runtime (`owner` names this process in the lease table)."""

    def __init__(
        self,
        store: WorkflowStore,
        wakeups: WakeUps,
        *,
        owner: str,
        lease_seconds: float = 60.0,
        recheck_seconds: float = 1.0,
    ) -> None:
        self.store = store
        self.wakeups = wakeups
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.recheck_seconds = recheck_seconds
        self.claims_lost = 0  # steps left to another process (each one a step not run twice)
        self._retries: dict[str, int] = {}
        self._lock = threading.Lock()

    def claim(self, instance_id: str) -> bool:
        if self.store.claim(instance_id, self.owner, self.lease_seconds):
            with self._lock:
                self._retries.pop(instance_id, None)
            return True
        with self._lock:
            self.claims_lost += 1
        return False

    def release(self, instance_id: str) -> None:
        self.store.release(instance_id, self.owner)

    def retry_delay(self, instance_id: str) -> float:
        """Seconds until this process looks again at an instance another one holds (0.1 s doubling to 5 s)."""
        with self._lock:
            tries = self._retries.get(instance_id, 0)
            self._retries[instance_id] = tries + 1
            if len(self._retries) > 10_000:
                self._retries.pop(next(iter(self._retries)))
        return min(0.1 * 2**tries, 5.0)

    def announce(self, state: InstanceState) -> None:
        timer = state.timer_fire_at if not state.is_terminal else None
        self.wakeups.announce(state.instance_id, iso(timer) if timer is not None else None)

    def recheck(self, left: float) -> float:
        """How long a waiter may sleep before it reads the instance again: all of `left` while wake-ups work."""
        return left if self.wakeups.healthy else min(left, self.recheck_seconds)
