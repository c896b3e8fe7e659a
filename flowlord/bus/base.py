"""The bus interface: `Message`, `Producer`, `Consumer`, and the rules both adapters share."""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from workflow.phase import is_valid_topic

_GROUP = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class Message:
    """One message; `offset` is its position in the topic (bytes for files, index in memory,
    the entry ID's time and sequence for Redis), `entry` the adapter's own name for it where
    it has one (a Redis Streams entry ID, which `ack` needs)."""

    topic: str
    body: str
    offset: int
    entry: str = ""

    @property
    def where(self) -> str:
        """The message's position as an operator would look it up: the entry ID, or the
        offset."""
        return self.entry or str(self.offset)


class Producer(Protocol):
    """Sends messages; safe to share between threads."""

    def send(self, topic: str, body: str) -> None:
        """Append `body` (one line, not empty) to `topic`; ValueError for a bad topic or body."""
        ...

    def close(self) -> None:
        """Release what the producer holds; `send` raises ValueError afterwards."""
        ...


class Consumer(Protocol):
    """Reads the topics it was made for, in turn, for one group (at least once delivery)."""

    def receive(self, timeout: float) -> Message | None:
        """The next message not yet received, or None after `timeout` seconds with none."""
        ...

    def ack(self, message: Message) -> None:
        """Mark `message` done; a new consumer of the group resumes after the acked prefix."""
        ...

    def ack_all(self, messages: Sequence[Message]) -> None:
        """`ack` each of `messages`, in one round trip where the bus has a server (Redis):
        the taskmaster acks a committed batch at once."""
        ...

    def wakeup(self) -> None:
        """Make a blocked `receive` return None now, or else the next one return None at once.

        For a loop that also waits on something else: the thread that sees the other thing
        change (a saved workflow file) calls this so the loop does not sit out its timeout.
        Calls before a `receive` count once. Safe from any thread; a no-op after `close`.
        """
        ...

    def close(self) -> None:
        """Stop: a `receive` blocked in another thread returns None; later calls raise."""
        ...


class BusUnavailable(ConnectionError):
    """The bus's server cannot be reached now (Redis restarting, a network fault).

    A producer raises it at once while an outage lasts, rather than waiting on each send; the
    caller keeps what it meant to send (a record stays queued) and tries again later.
    """


class BusFolderError(ValueError):
    """A file bus folder that cannot be used: not a folder, not writable, or not creatable."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"bus folder {path}: {problem}")
        self.path = path
        self.problem = problem


def check_topic(topic: str) -> str:
    """Return `topic` if it is a safe file name: the rule validation applies to every phase's
    topic (`[A-Za-z0-9_.-]+`, no leading dot, at most 200 characters)."""
    if not isinstance(topic, str) or not is_valid_topic(topic):
        raise ValueError(
            f"invalid topic {topic[:40] if isinstance(topic, str) else topic!r}: "
            "use [A-Za-z0-9_.-]+, not starting with '.', at most 200 characters"
        )
    return topic


def check_group(group: str) -> str:
    """Return `group` if it is `[A-Za-z0-9_-]+`: no dot, so `<group>.<topic>` is unambiguous."""
    if not isinstance(group, str) or not _GROUP.fullmatch(group):
        raise ValueError(f"invalid group {group!r}: use [A-Za-z0-9_-]+")
    return group


def check_body(body: str) -> str:
    """Return `body` if it fits on one line of a topic file: not empty, no newline."""
    if not body or "\n" in body:
        raise ValueError(f"invalid message body {body[:80]!r}: must be one non-empty line")
    return body


class AckTracker:
    """Delivered messages of one topic and which are acked; `committed` is where to resume.

    `committed` only moves past the longest acked prefix, so out of order acks never skip
    a message that is still in flight.
    """

    __slots__ = ("_acked", "_pending", "committed")

    def __init__(self, committed: int) -> None:
        self.committed = committed
        self._pending: OrderedDict[int, tuple[Message, int]] = OrderedDict()
        self._acked: set[int] = set()

    def delivered(self, message: Message, end: int) -> None:
        """Record a message handed out, in offset order; `end` is the offset after it."""
        self._pending[message.offset] = (message, end)

    def ack(self, message: Message) -> bool:
        """Mark `message` acked; True when `committed` moved. Unknown or stale: no change."""
        pending = self._pending.get(message.offset)
        if pending is None or pending[0] != message:
            return False
        self._acked.add(message.offset)
        start = self.committed
        while self._pending:
            offset = next(iter(self._pending))
            if offset not in self._acked:
                break
            self._acked.discard(offset)
            self.committed = self._pending.popitem(last=False)[1][1]
        return self.committed != start

    def reset(self, committed: int) -> None:
        """Forget everything in flight (the topic was replaced) and resume at `committed`."""
        self.committed = committed
        self._pending.clear()
        self._acked.clear()


class Subscription:
    """A consumer's topics, taken in turn, with an `AckTracker` per topic."""

    def __init__(self, topics: Sequence[str], group: str, committed: Callable[[str], int]) -> None:
        if isinstance(topics, str) or not topics:
            raise ValueError(f"a consumer needs a list of topics, not {topics!r}")
        self.group = check_group(group)
        self.topics = tuple(dict.fromkeys(check_topic(topic) for topic in topics))
        self.trackers = {topic: AckTracker(committed(topic)) for topic in self.topics}
        self._start = 0

    def next(self, take: Callable[[str], tuple[Message, int] | None]) -> Message | None:
        """The first message `take` finds, starting after the topic that delivered last."""
        count = len(self.topics)
        for step in range(count):
            index = (self._start + step) % count
            taken = take(self.topics[index])
            if taken is not None:
                self._start = index + 1
                message, end = taken
                self.trackers[message.topic].delivered(message, end)
                return message
        return None

    def tracker(self, message: Message) -> AckTracker:
        """The tracker of the message's topic; ValueError if this consumer does not read it."""
        tracker = self.trackers.get(message.topic)
        if tracker is None:
            raise ValueError(f"topic {message.topic!r} is not one this consumer reads")
        return tracker
