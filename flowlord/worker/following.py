"""Following workflow files: the topics a worker reads change as files come and go."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence

from flowlord.bus import Consumer, Message, check_topic
from workflow import PhaseRecord

log = logging.getLogger("flowlord.worker")


def workflow_topics(phases: Iterable[PhaseRecord], *, done_topic: str) -> list[str]:
    """The topics a worker reads for these phases: never the done topic (it would read its own
    answers), never a name the bus refuses (validation reports those phases)."""
    topics = set()
    for phase in phases:
        try:
            topics.add(check_topic(phase.topic))
        except ValueError:
            log.debug("%s: %s: topic %r skipped: not a bus topic", phase.file_path, phase.task,
                      phase.topic)  # fmt: skip
    topics.discard(done_topic)
    return sorted(topics)


class FollowingConsumer:
    """A `Consumer` whose topics can change while it runs.

    `follow(topics)` may be called from any thread (a workflow watcher's); the next `receive`
    closes the old consumer and makes one for the new topics. The bus keeps offsets per group
    and topic, so the new consumer resumes each topic where the old one stopped, and reads a
    new topic from its start. Ack each message before the next `receive`: a message still in
    flight when the consumer is rebuilt is delivered again (at least once, as always).
    """

    def __init__(self, make: Callable[[Sequence[str]], Consumer], topics: Sequence[str]) -> None:
        self._make = make
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._woken = threading.Event()
        self._wanted = tuple(topics)
        self.topics = self._wanted
        self._consumer = make(self.topics) if self.topics else None

    def follow(self, topics: Sequence[str]) -> None:
        """Read `topics` from the next `receive` on, which comes at once (a blocked one is
        woken)."""
        with self._lock:
            self._wanted = tuple(topics)
        self.wakeup()

    def wakeup(self) -> None:
        """Make a blocked `receive` return None promptly, or the next one at once."""
        self._woken.set()
        consumer = self._consumer
        if consumer is not None:
            consumer.wakeup()

    def receive(self, timeout: float) -> Message | None:
        self._rebuild()
        if self._consumer is None:  # no topic yet: wait for a workflow file to name one
            self._woken.wait(timeout)
            self._woken.clear()
            return None
        self._woken.clear()
        return self._consumer.receive(timeout)

    def ack(self, message: Message) -> None:
        if self._consumer is None:
            raise ValueError(f"topic {message.topic!r} is not one this consumer reads")
        self._consumer.ack(message)

    def ack_all(self, messages: Sequence[Message]) -> None:
        if self._consumer is None and messages:
            raise ValueError(f"topic {messages[0].topic!r} is not one this consumer reads")
        if self._consumer is not None:
            self._consumer.ack_all(messages)

    def close(self) -> None:
        self._closed.set()
        self._woken.set()
        if self._consumer is not None:
            self._consumer.close()

    def _rebuild(self) -> None:
        with self._lock:
            wanted = self._wanted
        if wanted == self.topics or self._closed.is_set():
            return
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
        self._consumer = self._make(wanted) if wanted else None
        self.topics = wanted
        log.info("now reading %s", ", ".join(wanted) or "no topic")
