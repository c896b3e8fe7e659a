"""`FileBus`: topics as append-only `<folder>/<topic>.jsonl` files shared between processes.

A producer appends each line with one `os.write` on an `O_APPEND` descriptor, so lines from
concurrent producers never interleave on a local filesystem. A consumer follows the files by
polling their size and saves, per group and topic, the byte offset after its acked prefix in
`<folder>/.offsets/<group>.<topic>`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from flowlord.bus.base import Consumer, Message, Producer, Subscription, check_body, check_topic

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20
_APPEND = os.O_APPEND | os.O_CREAT | os.O_WRONLY


class FileBus:
    """Topics as files under `folder` (created if missing); consumers poll every interval."""

    def __init__(self, folder: Path, *, poll_interval: float = 0.05) -> None:
        if not poll_interval > 0:
            raise ValueError(f"poll_interval must be positive, not {poll_interval!r}")
        self.folder = Path(folder)
        self.poll_interval = poll_interval
        self.folder.mkdir(parents=True, exist_ok=True)

    def topic_path(self, topic: str) -> Path:
        """The file holding `topic`'s messages, one per line."""
        return self.folder / f"{check_topic(topic)}.jsonl"

    def _offset_path(self, group: str, topic: str) -> Path:
        return self.folder / ".offsets" / f"{group}.{topic}"

    def producer(self) -> Producer:
        return _FileProducer(self)

    def consumer(self, topics: Sequence[str], group: str) -> Consumer:
        """A consumer of `group` resuming at the offsets saved by its last acks."""
        return _FileConsumer(self, topics, group)


class _FileProducer:
    def __init__(self, bus: FileBus) -> None:
        self._bus = bus
        self._fds: dict[str, int] = {}
        self._lock = threading.Lock()
        self._closed = False

    def send(self, topic: str, body: str) -> None:
        line = check_body(body).encode() + b"\n"
        with self._lock:
            if self._closed:
                raise ValueError("send on a closed producer")
            fd = self._fds.get(topic)
            if fd is None:
                fd = self._fds[topic] = os.open(self._bus.topic_path(topic), _APPEND, 0o644)
            written = os.write(fd, line)
        if written != len(line):
            raise OSError(f"short write to topic {topic!r}: {written} of {len(line)} bytes")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            fds, self._fds = self._fds, {}
        for fd in fds.values():
            os.close(fd)


class _TopicReader:
    """Complete, non-empty lines of one topic file after `position`; a partial line waits."""

    def __init__(self, path: Path, position: int) -> None:
        self.path = path
        self.position = position
        self.truncated = False
        self._lines: deque[tuple[int, bytes]] = deque()

    def next_line(self) -> tuple[int, bytes] | None:
        """The next line and its offset, or None (also when the file shrank: `truncated`)."""
        while not self._lines:
            if not self._fill():
                return None
        return self._lines.popleft()

    def restart(self) -> None:
        self.position = 0
        self.truncated = False
        self._lines.clear()

    def _fill(self) -> bool:
        try:
            with open(self.path, "rb") as file:
                if os.fstat(file.fileno()).st_size < self.position:
                    self.truncated = True
                    return False
                file.seek(self.position)
                data = _read_to_newline(file)
        except FileNotFoundError:
            self.truncated = self.position > 0
            return False
        end = data.rfind(b"\n") + 1
        offset = self.position
        for raw in data[:end].split(b"\n")[:-1]:
            if raw:
                self._lines.append((offset, raw))
            offset += len(raw) + 1
        self.position += end
        return end > 0


def _read_to_newline(file: BinaryIO) -> bytes:
    """Read chunks until one holds a newline or the file ends."""
    chunks: list[bytes] = []
    while True:
        chunk = file.read(_CHUNK)
        chunks.append(chunk)
        if not chunk or b"\n" in chunk:
            return b"".join(chunks)


class _FileConsumer:
    def __init__(self, bus: FileBus, topics: Sequence[str], group: str) -> None:
        self._bus = bus
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sub = Subscription(topics, group, lambda topic: self._load(group, topic))
        self._readers = {
            topic: _TopicReader(bus.topic_path(topic), tracker.committed)
            for topic, tracker in self._sub.trackers.items()
        }

    def receive(self, timeout: float) -> Message | None:
        deadline = time.monotonic() + timeout
        self._check_open()
        while True:
            with self._lock:
                message = self._sub.next(self._take)
            remaining = deadline - time.monotonic()
            if message is not None or remaining <= 0:
                return message
            if self._stop.wait(min(self._bus.poll_interval, remaining)):
                return None

    def _take(self, topic: str) -> tuple[Message, int] | None:
        reader = self._readers[topic]
        line = reader.next_line()
        if line is None and reader.truncated:
            logger.warning(
                "%s shrank below offset %d: reading from 0", reader.path, reader.position
            )
            reader.restart()
            self._sub.trackers[topic].reset(0)
            self._save(topic, 0)
            line = reader.next_line()
        if line is None:
            return None
        offset, raw = line
        return Message(topic, raw.decode(errors="replace"), offset), offset + len(raw) + 1

    def ack(self, message: Message) -> None:
        with self._lock:
            self._check_open()
            tracker = self._sub.tracker(message)
            if tracker.ack(message):
                self._save(message.topic, tracker.committed)

    def close(self) -> None:
        self._stop.set()

    def _check_open(self) -> None:
        if self._stop.is_set():
            raise ValueError("consumer is closed")

    def _load(self, group: str, topic: str) -> int:
        path = self._bus._offset_path(group, topic)
        try:
            text = path.read_text()
        except FileNotFoundError:
            return 0
        if not text.strip().isdecimal():
            raise ValueError(f"{path}: not a saved offset: {text[:40]!r}")
        return int(text)

    def _save(self, topic: str, offset: int) -> None:
        """Replace the offset file atomically: readers see the old offset or the new one."""
        path = self._bus._offset_path(self._sub.group, topic)
        path.parent.mkdir(exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as file:
                file.write(f"{offset}\n")
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
