"""Which chat turns ended, learnt from the runtime's change notices instead of polling the database."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from daca_kit.core.kit import Kit
from daca_kit.core.models import TurnResult


class TurnWatch:
    """Which chat turns ended, learnt from the runtime's change notices.

        watch = TurnWatch(kit); watch.track(instance_id); result = watch.check(instance_id)

    `check` reads the turn only once the runtime said it ended, or every `fallback` seconds (a decision
    taken by another process is not announced here), so UI timers mostly read memory. `generation` grows
    with every change, which tells the Review tab when to re-read its lists.
    """

    def __init__(
        self,
        kit: Kit,
        *,
        fallback: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kit = kit
        self.fallback = fallback
        self.clock = clock
        self.generation = 0
        self._ended: OrderedDict[str, None] = OrderedDict()
        self._read_at: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()
        kit.on_change(self._changed)

    def _changed(self, state: Any) -> None:
        with self._lock:
            self.generation += 1
            if state.is_terminal:
                self._ended[state.instance_id] = None
                while len(self._ended) > 10_000:
                    self._ended.popitem(last=False)

    def track(self, instance_id: str) -> None:
        with self._lock:
            self._read_at[instance_id] = self.clock()
            while len(self._read_at) > 10_000:
                self._read_at.popitem(last=False)

    def check(self, instance_id: str) -> tuple[bool, TurnResult | None]:
        """(True, the turn as it stands or None if unknown) when it may have changed, else (False, None)."""
        now = self.clock()
        with self._lock:
            ended = instance_id in self._ended
            last = self._read_at.get(instance_id)
            if not ended and last is not None and now - last < self.fallback:
                return False, None
            self._read_at[instance_id] = now
        result = self.kit.turn(instance_id)
        if result is None or result.finished:
            with self._lock:
                self._read_at.pop(instance_id, None)
                self._ended.pop(instance_id, None)
        return True, result
