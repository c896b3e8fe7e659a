"""A topic's files: the active segment, sealed segments, the base sidecar and the lock.

Topic `T` in the bus folder:

- `T.jsonl`, the active segment: producers append to it (the file bus's original layout).
- `T.jsonl.<base>` (20 digits), a sealed segment: a former active segment, never written again.
- `T.base`, the active segment's base (absent means 0).
- `T.lock`, for `flock`: a write holds LOCK_SH, a roll or a deletion LOCK_EX.

Offsets are logical and grow forever: the offset of a byte is its segment's base plus its
position in that segment, and each segment's base is the previous base plus the previous size.
A sealed name ends in digits, never in `.jsonl`, so no topic's active file can take it.

A roll renames the active file to its sealed name, then writes the new base. Should a crash
fall between the two, the sealed segment's end is the truth: the active base is the larger of
the sidecar and the end of the newest sealed segment.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from flowlord.bus.offsets import group_offsets

_OPEN_LOCK = os.O_RDWR | os.O_CLOEXEC


@dataclass(frozen=True, slots=True)
class Segment:
    """A sealed segment: `base` is the logical offset of its first byte."""

    base: int
    path: Path


class TopicFiles:
    """The paths of one topic and the reads and writes that keep them consistent."""

    def __init__(self, folder: Path, topic: str) -> None:
        self.topic = topic
        self.active = folder / f"{topic}.jsonl"
        self.lock = folder / f"{topic}.lock"
        self.base_path = folder / f"{topic}.base"
        self.folder = folder
        self._sealed_name = re.compile(re.escape(f"{topic}.jsonl.") + "([0-9]{20})")

    def sealed_path(self, base: int) -> Path:
        return self.folder / f"{self.topic}.jsonl.{base:020d}"

    def sealed(self) -> list[Segment]:
        """The sealed segments on disk, oldest first."""
        found = []
        with os.scandir(self.folder) as entries:
            for entry in entries:
                match = self._sealed_name.fullmatch(entry.name)
                if match is not None:
                    found.append(Segment(int(match[1]), Path(entry.path)))
        return sorted(found, key=lambda segment: segment.base)

    def active_base(self, sealed: list[Segment] | None = None) -> int:
        """The active segment's base; call under the lock so no roll moves it meanwhile."""
        base = self.read_base()
        segments = self.sealed() if sealed is None else sealed
        if segments:
            newest = segments[-1]
            base = max(base, newest.base + os.stat(newest.path).st_size)
        return base

    def read_base(self) -> int:
        """The sidecar's base; 0 without one (a folder from before segments)."""
        try:
            text = self.base_path.read_text()
        except FileNotFoundError:
            return 0
        if not text.strip().isdecimal():
            raise ValueError(f"{self.base_path}: not a segment base: {text[:40]!r}")
        return int(text)

    def write_base(self, base: int) -> None:
        """Replace the sidecar by temp file and rename (rare: once per roll)."""
        fd, temp = tempfile.mkstemp(dir=self.folder, prefix=f".{self.base_path.name}.")
        try:
            with os.fdopen(fd, "w") as file:
                file.write(f"{base}\n")
            os.chmod(temp, 0o644)
            os.replace(temp, self.base_path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise

    def open_lock(self) -> int | None:
        """A descriptor of the lock file, None if there is none yet."""
        try:
            return os.open(self.lock, _OPEN_LOCK)
        except FileNotFoundError:
            return None

    def create_lock(self) -> int:
        """A descriptor of the lock file, created if missing."""
        return os.open(self.lock, _OPEN_LOCK | os.O_CREAT, 0o644)


@contextlib.contextmanager
def locked(fd: int, mode: int) -> Iterator[None]:
    """Hold `flock(fd, mode)` (LOCK_SH or LOCK_EX) for the block."""
    fcntl.flock(fd, mode)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def roll(files: TopicFiles, lock_fd: int, limit: int) -> bool:
    """Seal the active segment if it is over `limit` bytes; False if another roller did."""
    with locked(lock_fd, fcntl.LOCK_EX):
        try:
            size = os.stat(files.active).st_size
        except FileNotFoundError:
            return False
        if size <= limit:
            return False
        base = files.active_base()
        os.rename(files.active, files.sealed_path(base))
        files.write_base(base + size)
        # Created here, not by the next send, so that readers always find an active file.
        os.close(os.open(files.active, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
    return True


def collect(files: TopicFiles, lock_fd: int, offsets_folder: Path) -> list[Segment]:
    """Delete the sealed segments that every group with saved offsets has passed.

    A group whose offsets file cannot be read counts as offset 0: nothing is deleted.
    Returns the segments deleted.
    """
    with locked(lock_fd, fcntl.LOCK_EX):
        segments = files.sealed()
        offsets = group_offsets(offsets_folder, files.topic).values()
        if not segments or not offsets:
            return []
        floor = min(offset or 0 for offset in offsets)
        active = files.active_base(segments)
        if files.read_base() < active:
            files.write_base(active)  # before the sealed segment that proves it goes
        bounds = [segment.base for segment in segments] + [active]
        deleted = []
        for segment, end in zip(segments, bounds[1:], strict=True):
            if end > floor:
                break
            with contextlib.suppress(FileNotFoundError):
                os.unlink(segment.path)
            deleted.append(segment)
    return deleted
