"""`flowlord worker nop`: a demo worker that completes every task it reads.

It makes the README's main command show tasks flowing through a workflow on a fresh machine;
`fail_first` makes it fail the first tasks of a topic, to show retries and failures.
`FollowingConsumer` lets a worker follow its topics as workflow files come and go.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from flowlord.bus import Consumer, Message, Producer, check_topic
from workflow import PhaseRecord, Result, Task
from workflow.task import rfc3339

log = logging.getLogger("flowlord.worker")


class NopWorker:
    """Reads tasks, writes each back to the done topic with `started`, `ended` and a result."""

    def __init__(
        self,
        consumer: Consumer,
        producer: Producer,
        *,
        now: Callable[[], datetime],
        done_topic: str = "done",
        fail_first: Mapping[str, int] | None = None,
    ) -> None:
        self._consumer = consumer
        self._producer = producer
        self._now = now
        self._done_topic = done_topic
        self._failures_left = dict(fail_first or {})
        self.handled = 0

    def run(self, stop: threading.Event, *, poll: float = 0.2) -> None:
        while not stop.is_set():
            self.step(timeout=poll)

    def step(self, *, timeout: float = 0.0) -> bool:
        """Handle at most one task; False when none came within `timeout`."""
        message = self._consumer.receive(timeout)
        if message is None:
            return False
        try:
            task = Task.from_json(message.body)
        except ValueError as err:
            log.error("bad task on %s at %d: %s", message.topic, message.offset, err)
        else:
            self._producer.send(self._done_topic, self._complete(task).to_json())
            self.handled += 1
        self._consumer.ack(message)
        return True

    def _complete(self, task: Task) -> Task:
        stamp = rfc3339(self._now())
        result, msg = Result.COMPLETE, "nop"
        if self._failures_left.get(task.type, 0) > 0:
            self._failures_left[task.type] -= 1
            result, msg = Result.ERROR, "nop: told to fail"
        return replace(task, started=stamp, ended=stamp, result=result, msg=msg)


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
