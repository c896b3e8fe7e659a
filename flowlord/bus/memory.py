"""`MemoryBus`: the in-process reference bus, for tests and single-process runs."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from flowlord.bus.base import Consumer, Message, Producer, Subscription, check_body, check_topic


@dataclass(frozen=True, slots=True)
class _Store:
    changed: threading.Condition = field(default_factory=threading.Condition)
    topics: dict[str, list[str]] = field(default_factory=dict)
    committed: dict[tuple[str, str], int] = field(default_factory=dict)


class MemoryBus:
    """Topics as lists; acked offsets per (group, topic) last as long as the bus object."""

    def __init__(self) -> None:
        self._store = _Store()

    def producer(self) -> Producer:
        return _MemoryProducer(self._store)

    def consumer(self, topics: Sequence[str], group: str) -> Consumer:
        """A consumer of `group` resuming after the last message the group acked per topic."""
        return _MemoryConsumer(self._store, topics, group)


class _MemoryProducer:
    def __init__(self, store: _Store) -> None:
        self._store = store
        self._closed = False

    def send(self, topic: str, body: str) -> None:
        check_topic(topic)
        check_body(body)
        with self._store.changed:
            if self._closed:
                raise ValueError("send on a closed producer")
            self._store.topics.setdefault(topic, []).append(body)
            self._store.changed.notify_all()

    def close(self) -> None:
        with self._store.changed:
            self._closed = True


class _MemoryConsumer:
    def __init__(self, store: _Store, topics: Sequence[str], group: str) -> None:
        self._store = store
        self._closed = False
        self._woken = False
        with store.changed:
            self._sub = Subscription(topics, group, lambda t: store.committed.get((group, t), 0))
        self._positions = {topic: t.committed for topic, t in self._sub.trackers.items()}

    def receive(self, timeout: float) -> Message | None:
        deadline = time.monotonic() + timeout
        with self._store.changed:
            self._check_open()
            while not self._closed:
                if self._woken:
                    self._woken = False
                    return None
                message = self._sub.next(self._take)
                remaining = deadline - time.monotonic()
                if message is not None or remaining <= 0:
                    return message
                self._store.changed.wait(remaining)
            return None

    def _take(self, topic: str) -> tuple[Message, int] | None:
        bodies = self._store.topics.get(topic, [])
        index = self._positions[topic]
        if index >= len(bodies):
            return None
        self._positions[topic] = index + 1
        return Message(topic, bodies[index], index), index + 1

    def ack(self, message: Message) -> None:
        with self._store.changed:
            self._check_open()
            tracker = self._sub.tracker(message)
            if tracker.ack(message):
                self._store.committed[(self._sub.group, message.topic)] = tracker.committed

    def ack_all(self, messages: Sequence[Message]) -> None:
        for message in messages:
            self.ack(message)

    def wakeup(self) -> None:
        with self._store.changed:
            self._woken = True
            self._store.changed.notify_all()

    def close(self) -> None:
        with self._store.changed:
            self._closed = True
            self._store.changed.notify_all()

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("consumer is closed")
