"""Fakes of the ports: real, in-memory implementations that record what happened."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from daca_kit.adapters.offline import words
from daca_kit.core.models import Backend, Reply, ReplyRequest
from daca_kit.core.ports import Handler
from daca_kit.errors import BusError, CountersError, ModelError


class FakeCounters:
    name = "fake"
    backend = Backend("fake", "fake", "fake counters (tests)", embedded=True)

    def __init__(self) -> None:
        self.values: dict[str, int] = {}
        self.seen: set[str] = set()
        self.down = False
        self.commands = 0
        self.batches: list[int] = []  # the size of each increment_many call
        self._lock = threading.Lock()

    def _check(self) -> None:
        self.commands += 1
        if self.down:
            raise CountersError("Could not reach the counters: the fake is down")

    def get(self, user_id: str) -> int:
        self._check()
        return self.values.get(user_id, 0)

    def set(self, user_id: str, value: int) -> None:
        self._check()
        self.values[user_id] = value

    def increment_once(self, user_id: str, event_id: str) -> int:
        self._check()
        with self._lock:
            if event_id not in self.seen:
                self.seen.add(event_id)
                self.values[user_id] = self.values.get(user_id, 0) + 1
            return self.values.get(user_id, 0)

    def increment_many(self, events: Sequence[tuple[str, str]]) -> int:
        self._check()
        with self._lock:
            self.batches.append(len(events))
            before = len(self.seen)
            for user_id, event_id in events:
                if event_id not in self.seen:
                    self.seen.add(event_id)
                    self.values[user_id] = self.values.get(user_id, 0) + 1
            return len(self.seen) - before

    def reset(self) -> int:
        self._check()
        cleared = len(self.values)
        self.values.clear()
        return cleared

    def all(self, limit: int = 1000) -> dict[str, int]:
        self._check()
        return dict(list(self.values.items())[:limit])

    @property
    def calls(self) -> int:
        return self.commands

    def ping(self) -> None:
        self._check()

    def close(self) -> None:
        pass


class FakeEventBus:
    """Delivers synchronously like the in-process bus and records every published event."""

    name = "fake"
    backend = Backend("fake", "fake", "fake bus (tests)", embedded=True)

    def __init__(self) -> None:
        self.sent: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.handlers: dict[str, list[Handler]] = defaultdict(list)
        self.down = False
        self.published = 0

    def publish(self, topic: str, event: dict[str, Any]) -> None:
        if self.down:
            raise BusError("the fake broker is down")
        self.sent[topic].append(event)
        self.published += 1
        for handler in self.handlers[topic]:
            handler(event)

    def subscribe(self, topic: str, handler: Handler, *, consumer: str, consume: bool = True) -> None:
        if consume:
            self.handlers[topic].append(handler)

    @property
    def calls(self) -> int:
        return self.published

    def ping(self) -> None:
        if self.down:
            raise BusError("the fake broker is down")

    def close(self) -> None:
        pass


class FakeBatchEventBus(FakeEventBus):
    """A FakeEventBus that also takes batches (`BatchPublisher`); records each batch, refuses ids in `refuse`."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []
        self.refuse: set[str] = set()

    def publish_many(self, events: list[tuple[str, dict[str, Any]]]) -> list[int]:
        if self.down:
            raise BusError("the fake broker is down")
        self.batches.append([str(event["id"]) for _topic, event in events])
        refused = [i for i, (_topic, event) in enumerate(events) if event["id"] in self.refuse]
        for i, (topic, event) in enumerate(events):
            if i not in refused:
                self.publish(topic, event)
        return refused


class FakeReplyModel:
    """Replies "reply #n to <text>"; `fail_with` makes it raise; records every request. `stream` hands the
    same reply on word by word (`StreamingReplyModel`)."""

    name = "fake-model"
    backend = Backend("fake", "fake-model", "fake model (tests)", embedded=True)

    def __init__(self) -> None:
        self.requests: list[ReplyRequest] = []
        self.fail_with: Exception | None = None
        self.calls = 0

    def generate(self, request: ReplyRequest) -> Reply:
        self.calls += 1
        self.requests.append(request)
        if self.fail_with is not None:
            raise self.fail_with
        return Reply(text=f"reply #{len(self.requests)} to {request.text}", model=self.name)

    def stream(self, request: ReplyRequest, on_chunk: Callable[[str], None]) -> Reply:
        reply = self.generate(request)
        for piece in words(reply.text):
            on_chunk(piece)
        return reply

    def ping(self) -> None:
        pass

    def close(self) -> None:
        pass


def failing_model() -> FakeReplyModel:
    model = FakeReplyModel()
    model.fail_with = ModelError("GEMINI_MODEL 'x' was not found: set GEMINI_MODEL to a current model")
    return model
