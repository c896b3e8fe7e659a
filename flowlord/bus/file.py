"""`FileBus`: topics as append-only files in a folder shared between processes.

`append` writes (one `os.write` per line, under a shared lock, rolling full segments);
`reader` reads complete lines across segments; `offsets` saves each group's position in place
on every ack; `wake` blocks a consumer until the folder changes. A consumer deletes the sealed
segments that every group with saved offsets has passed.

An external writer in another language appends safely by doing what `send` does: open
`<topic>.lock` (create it if missing) and take `flock(LOCK_SH)`; open `<topic>.jsonl` with
`O_APPEND|O_CREAT`, or reopen it if the inode of the descriptor you keep is no longer the
path's; write one whole line (at most the maximum message size) in a single `write()`; unlock.
Without the lock, a line written while a producer seals the segment may never be read.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path

from flowlord.bus.append import FileProducer
from flowlord.bus.base import (
    BusFolderError,
    Consumer,
    Message,
    Producer,
    Subscription,
    check_topic,
)
from flowlord.bus.offsets import OffsetFile
from flowlord.bus.reader import Line, TopicReader
from flowlord.bus.segments import TopicFiles
from flowlord.bus.wake import Waker

logger = logging.getLogger(__name__)

MiB = 1 << 20


class FileBus:
    """Topics as files under `folder` (created if missing; BusFolderError if unusable).

    `poll_interval`: how often consumers look for new lines where inotify is not available
    or `notify` is false (a network filesystem, where it misses other machines' writes).
    `safety_poll`: how often they look anyway with inotify. `segment_bytes`: the size past
    which a producer seals the active segment. `max_message_size`: longer lines are refused
    by producers and skipped (logged, committed past) by consumers.
    """

    def __init__(
        self,
        folder: Path,
        *,
        poll_interval: float = 0.05,
        safety_poll: float = 1.0,
        notify: bool = True,
        segment_bytes: int = 64 * MiB,
        max_message_size: int = 8 * MiB,
    ) -> None:
        positive = {
            "poll_interval": poll_interval,
            "safety_poll": safety_poll,
            "segment_bytes": segment_bytes,
            "max_message_size": max_message_size,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"{name} must be positive, not {value!r}")
        self.folder = Path(folder)
        self.poll_interval = poll_interval
        self.safety_poll = safety_poll
        self.notify = notify
        self.segment_bytes = segment_bytes
        self.max_message_size = max_message_size
        _prepare(self.folder)

    @property
    def offsets_folder(self) -> Path:
        """Where `<group>.<topic>` files hold each group's committed offset per topic."""
        return self.folder / ".offsets"

    def topic_path(self, topic: str) -> Path:
        """The active segment of `topic`: the file producers append to, one message a line."""
        return self.topic_files(topic).active

    def topic_files(self, topic: str) -> TopicFiles:
        return TopicFiles(self.folder, check_topic(topic))

    def offset_path(self, group: str, topic: str) -> Path:
        return self.offsets_folder / f"{group}.{topic}"

    def producer(self) -> Producer:
        return FileProducer(
            self.topic_files,
            segment_bytes=self.segment_bytes,
            max_size=self.max_message_size,
        )

    def consumer(self, topics: Sequence[str], group: str) -> Consumer:
        """A consumer of `group` resuming at the offsets saved by its last acks."""
        return _FileConsumer(self, topics, group)


def _prepare(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise BusFolderError(folder, "exists and is not a folder") from None
    except OSError as err:
        raise BusFolderError(folder, f"cannot be created: {err.strerror or err}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise BusFolderError(folder, "not writable")


class _FileConsumer:
    """Locks: `_lock` guards the files and the trackers (take, ack, close); `_receiving` is
    held by a `receive` for its whole wait, so `close` frees the waker only once none waits."""

    def __init__(self, bus: FileBus, topics: Sequence[str], group: str) -> None:
        self._bus = bus
        self._lock = threading.Lock()
        self._receiving = threading.Lock()
        self._closed = False
        self._woken = threading.Event()
        self._offsets: dict[str, OffsetFile] = {}
        self._collected: dict[str, int] = {}
        saved: dict[str, int | None] = {}

        def load(topic: str) -> int:
            self._offsets[topic] = OffsetFile(bus.offset_path(group, topic))
            saved[topic] = self._offsets[topic].load()
            return saved[topic] or 0

        self._sub = Subscription(topics, group, load)
        self._waker = Waker(bus.folder, notify=bus.notify)
        self._readers = {
            topic: TopicReader(bus.topic_files(topic), start, max_size=bus.max_message_size)
            for topic, start in saved.items()
        }
        self._idle = bus.safety_poll if self._waker.notifies else bus.poll_interval
        # Closes the descriptors once: on close(), or when a consumer never closed is collected.
        self._release = weakref.finalize(
            self, _close_all, [*self._readers.values(), *self._offsets.values(), self._waker]
        )

    def receive(self, timeout: float) -> Message | None:
        deadline = time.monotonic() + timeout
        with self._receiving:
            self._check_open()
            while not self._closed:
                if self._woken.is_set():
                    self._woken.clear()
                    return None
                with self._lock:
                    message = None if self._closed else self._sub.next(self._take)
                remaining = deadline - time.monotonic()
                if message is not None or remaining <= 0:
                    return message
                self._waker.wait(min(remaining, self._idle))
        return None

    def _take(self, topic: str) -> tuple[Message, int] | None:
        reader = self._readers[topic]
        while True:
            line = reader.next_line()
            if reader.restarted is not None:
                self._sub.trackers[topic].reset(reader.restarted)
                self._offsets[topic].save(reader.restarted)
                reader.restarted = None
            if line is None:
                self._collect(topic)  # the reader may have moved past a segment since the last ack
                return None
            if line.data is not None:
                return Message(topic, line.data.decode(errors="replace"), line.offset), line.end
            self._skip(topic, line)

    def _skip(self, topic: str, line: Line) -> None:
        """A line never delivered (too long, or torn) counts as delivered and acked."""
        tracker = self._sub.trackers[topic]
        skipped = Message(topic, "", line.offset)
        tracker.delivered(skipped, line.end)
        if tracker.ack(skipped):
            self._commit(topic, tracker.committed)

    def ack(self, message: Message) -> None:
        with self._lock:
            self._check_open()
            tracker = self._sub.tracker(message)
            if tracker.ack(message):
                self._commit(message.topic, tracker.committed)

    def ack_all(self, messages: Sequence[Message]) -> None:
        for message in messages:
            self.ack(message)

    def _commit(self, topic: str, committed: int) -> None:
        self._offsets[topic].save(committed)
        self._collect(topic)

    def _collect(self, topic: str) -> None:
        """Once per segment boundary the group has committed past, delete what all groups passed."""
        reader = self._readers[topic]
        boundary = reader.sealed_below
        if self._sub.trackers[topic].committed >= boundary > self._collected.get(topic, 0):
            self._collected[topic] = boundary
            for segment in reader.collect(self._bus.offsets_folder):
                logger.debug("topic %s: deleted %s, passed by every group", topic, segment.path)

    def wakeup(self) -> None:
        self._woken.set()
        with self._lock:
            if not self._closed:
                self._waker.wake()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._waker.wake()
        with self._receiving, self._lock:
            self._release()

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("consumer is closed")


def _close_all(holders: list[TopicReader | OffsetFile | Waker]) -> None:
    for holder in holders:
        holder.close()
