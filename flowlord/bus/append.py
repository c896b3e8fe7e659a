"""Appending to a topic: one `os.write` per line under a shared lock, and rolling segments.

A producer holds LOCK_SH on `<topic>.lock` around each write, and under it reopens the active
segment if a roll moved it (its descriptor's inode is no longer the path's). So a line is never
written into a segment being sealed, and lines from concurrent producers never interleave
(one `write` on an `O_APPEND` descriptor). A producer that finds the active segment over the
size limit after its write seals it (`segments.roll`).
"""

from __future__ import annotations

import fcntl
import os
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from flowlord.bus.base import check_body
from flowlord.bus.segments import TopicFiles, locked, roll

_APPEND = os.O_APPEND | os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC


@dataclass(slots=True)
class _Appender:
    """A producer's descriptors of one topic: the lock file and the active segment."""

    files: TopicFiles
    lock: int
    fd: int = -1
    inode: int = -1

    def current(self) -> int:
        """The active segment's descriptor, reopened if a roll moved it; call under the lock."""
        try:
            inode = os.stat(self.files.active).st_ino
        except FileNotFoundError:
            inode = -1
        if inode != self.inode or self.fd < 0:
            if self.fd >= 0:
                os.close(self.fd)
            self.fd = os.open(self.files.active, _APPEND, 0o644)
            self.inode = os.fstat(self.fd).st_ino
        return self.fd

    def close(self) -> None:
        for fd in (self.fd, self.lock):
            if fd >= 0:
                os.close(fd)


class FileProducer:
    """Appends messages to topic files; one producer may be shared by threads."""

    def __init__(
        self, topic_files: Callable[[str], TopicFiles], *, segment_bytes: int, max_size: int
    ) -> None:
        self._topic_files = topic_files
        self._segment_bytes = segment_bytes
        self._max_size = max_size
        self._topics: dict[str, _Appender] = {}
        self._lock = threading.Lock()
        self._closed = False
        # Closes the descriptors once: on close(), or when a producer never closed is collected.
        self._release = weakref.finalize(self, _close_all, self._topics)

    def send(self, topic: str, body: str) -> None:
        line = check_body(body).encode() + b"\n"
        if len(line) - 1 > self._max_size:
            raise ValueError(
                f"message of {len(line) - 1} bytes for topic {topic!r} is over the bus's "
                f"maximum of {self._max_size}"
            )
        with self._lock:
            if self._closed:
                raise ValueError("send on a closed producer")
            appender = self._topics.get(topic) or self._open(topic)
            with locked(appender.lock, fcntl.LOCK_SH):
                fd = appender.current()
                written = os.write(fd, line)
                size = os.fstat(fd).st_size
            if written != len(line):
                raise OSError(f"short write to topic {topic!r}: {written} of {len(line)} bytes")
            if size > self._segment_bytes:
                roll(appender.files, appender.lock, self._segment_bytes)

    def _open(self, topic: str) -> _Appender:
        files = self._topic_files(topic)
        appender = self._topics[topic] = _Appender(files, files.create_lock())
        return appender

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._release()


def _close_all(appenders: dict[str, _Appender]) -> None:
    for appender in appenders.values():
        appender.close()
    appenders.clear()
