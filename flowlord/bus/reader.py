"""Reading one topic's complete lines from a logical offset, across its segments.

The reader keeps the segment it reads open and remembers how far it has scanned: an idle
check is one `fstat` (and a `stat` of the active path once at the end), and a partial last line
is never read twice while it grows; only its new bytes are scanned for a newline.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from flowlord.bus.segments import Segment, TopicFiles, collect, locked

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20
_READ = os.O_RDONLY | os.O_CLOEXEC


@dataclass(frozen=True, slots=True)
class Line:
    """A line at logical `offset`; `end` is after its newline; `data` None when it is skipped."""

    offset: int
    end: int
    data: bytes | None


@dataclass(slots=True)
class _Open:
    base: int
    fd: int
    inode: int
    path: Path
    sealed: bool


class TopicReader:
    """The lines of one topic from `position` on (None: from the earliest data there is).

    When the reader has to move its position itself (the topic shrank, or the data at the
    position was deleted), it says where in `restarted` for the owner to adopt.
    """

    def __init__(self, files: TopicFiles, position: int | None, *, max_size: int) -> None:
        self.files = files
        self.position = 0 if position is None else position
        self.restarted: int | None = None
        self._max_size = max_size
        self._from_earliest = position is None
        self._scan = self.position
        self._lines: deque[Line] = deque()
        self._open: _Open | None = None
        self._lock: int | None = None
        self._absent_at: int | None = None  # the folder's mtime when the topic had no file

    @property
    def sealed_below(self) -> int:
        """Every byte below this offset is in sealed segments, as far as the reader knows."""
        return 0 if self._open is None else self._open.base

    def next_line(self) -> Line | None:
        """The next complete line, or None while there is none."""
        while not self._lines:
            if not self._fill():
                return None
        return self._lines.popleft()

    def collect(self, offsets_folder: Path) -> list[Segment]:
        """Delete the sealed segments every group has passed (see `segments.collect`)."""
        if self._lock is None:
            return []
        return collect(self.files, self._lock, offsets_folder)

    def close(self) -> None:
        self._close_segment()
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def _fill(self) -> bool:
        """Read what is new; False when there is nothing to read now."""
        current = self._open
        if current is None:
            return self._open_position()
        end = current.base + os.fstat(current.fd).st_size
        if end < self._scan:
            self._shrank(current.path, current.base)
        elif end > self._scan:
            self._read(current, end)
        elif not current.sealed:
            if _inode(current.path) == current.inode:
                return False
            current.sealed = True  # rolled: its size is final once writes under the lock end
        else:
            self._next_segment(current, end)
        return True

    def _read(self, current: _Open, end: int) -> None:
        start = self._scan
        data = os.pread(current.fd, min(_CHUNK, end - start), start - current.base)
        self._scan = start + len(data)
        last = data.rfind(b"\n")
        if last < 0:
            return
        first = data.find(b"\n")
        self._add(self.position, start + first, data[:first], start, current)
        offset = start + first + 1
        for raw in data[first + 1 : last + 1].split(b"\n")[:-1]:
            self._add(offset, offset + len(raw), raw, offset, current)
            offset += len(raw) + 1
        self.position = start + last + 1

    def _add(self, offset: int, newline: int, tail: bytes, start: int, current: _Open) -> None:
        """Queue the line from `offset` to `newline`; `tail` holds its bytes from `start` on."""
        size = newline - offset
        if size == 0:
            return
        if size > self._max_size:
            logger.error(
                "topic %s: message at offset %d is %d bytes, over the maximum of %d: skipped",
                self.files.topic, offset, size, self._max_size,
            )  # fmt: skip
            self._lines.append(Line(offset, newline + 1, None))
            return
        if offset < start:
            tail = os.pread(current.fd, start - offset, offset - current.base) + tail
        self._lines.append(Line(offset, newline + 1, tail))

    def _next_segment(self, current: _Open, end: int) -> None:
        if self.position < end:
            logger.warning(
                "topic %s: unterminated line at offset %d at the end of %s: skipped",
                self.files.topic, self.position, current.path,
            )  # fmt: skip
            self._lines.append(Line(self.position, end, None))
        self._close_segment()
        self.position = self._scan = end

    def _open_position(self) -> bool:
        """Open the segment holding `position`; False when the topic has no file yet.

        A topic without a file is looked for again only once the folder changed (one `stat`
        of the folder, not an open and a stat of its files on every receive).
        """
        folder_mtime = os.stat(self.files.folder).st_mtime_ns
        if folder_mtime == self._absent_at:
            return False
        lock = self._lock_fd()
        if lock is None:
            self._absent_at = folder_mtime
            return False
        with locked(lock, fcntl.LOCK_SH):
            sealed = self.files.sealed()
            base = self.files.active_base(sealed)
            fd = _open_or_none(self.files.active)
        if self._from_earliest:
            self._from_earliest = False
            self._restart(sealed[0].base if sealed else base)
        if self.position >= base:
            return self._use_active(base, fd)
        if fd is not None:
            os.close(fd)
        return self._use_sealed(sealed, base)

    def _use_active(self, base: int, fd: int | None) -> bool:
        stat = None if fd is None else os.fstat(fd)
        if self.position > base + (0 if stat is None else stat.st_size):
            self._shrank(self.files.active, base)
        if fd is None or stat is None:
            return False
        self._open = _Open(base, fd, stat.st_ino, self.files.active, sealed=False)
        self._scan = self.position
        return True

    def _use_sealed(self, sealed: list[Segment], active_base: int) -> bool:
        bounds = [segment.base for segment in sealed] + [active_base]
        for segment, end in zip(sealed, bounds[1:], strict=True):
            if self.position >= end:
                continue
            if self.position < segment.base:
                self._deleted(segment.base)
            fd = _open_or_none(segment.path)
            if fd is not None:
                inode = os.fstat(fd).st_ino
                self._open = _Open(segment.base, fd, inode, segment.path, sealed=True)
                self._scan = self.position
            return True
        self._deleted(active_base)
        return True

    def _deleted(self, earliest: int) -> None:
        logger.warning(
            "topic %s: offset %d is in deleted segments: resuming at the earliest data, %d",
            self.files.topic, self.position, earliest,
        )  # fmt: skip
        self._restart(earliest)

    def _shrank(self, path: Path, base: int) -> None:
        logger.warning("%s shrank below offset %d: reading from %d", path, self._scan, base)
        self._restart(base)

    def _restart(self, position: int) -> None:
        self.position = self._scan = self.restarted = position
        self._lines.clear()

    def _lock_fd(self) -> int | None:
        if self._lock is None:
            self._lock = self.files.open_lock()
            if self._lock is None and self.files.active.exists():
                self._lock = self.files.create_lock()
        return self._lock

    def _close_segment(self) -> None:
        if self._open is not None:
            os.close(self._open.fd)
            self._open = None


def _inode(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


def _open_or_none(path: Path) -> int | None:
    try:
        return os.open(path, _READ)
    except FileNotFoundError:
        return None
