"""Saved consumer offsets: `<folder>/.offsets/<group>.<topic>`, written in place on each ack.

The file holds two fixed-width slots of 64 bytes, written alternately with one `os.pwrite`
and no fsync (a lost write only redelivers, which at-least-once allows)::

    <sequence, 20 digits> <offset, 20 digits> <crc32 of the first 41 bytes, 8 hex> <spaces>\n

A reader takes the valid slot with the highest sequence, so a write torn by a crash, or seen
half-done by another process, falls back to the previous offset. A file holding a decimal and
a newline (the format before slots) still loads; the first save rewrites it as slots, by temp
file and rename, once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import zlib
from pathlib import Path

logger = logging.getLogger(__name__)

SLOT = 64
_HEAD = 41
_LEGACY = re.compile(rb"[0-9]+\n?")
_SLOT = re.compile(rb"([0-9]{20}) ([0-9]{20}) ([0-9a-f]{8}) *\n")
_GROUP_FILE = re.compile(r"([A-Za-z0-9_-]+)\.(.+)")


def encode_slot(sequence: int, offset: int) -> bytes:
    """One slot: sequence, offset, and a CRC that tells a whole slot from a torn one."""
    head = f"{sequence:020d} {offset:020d}".encode()
    line = head + f" {zlib.crc32(head):08x}".encode()
    return line.ljust(SLOT - 1) + b"\n"


def decode(data: bytes, path: Path) -> tuple[int, int]:
    """(sequence, offset) from a file's bytes; ValueError naming `path` if nothing is valid."""
    if _LEGACY.fullmatch(data):
        return 0, int(data)
    best: tuple[int, int] | None = None
    for start in range(0, min(len(data), 2 * SLOT), SLOT):
        match = _SLOT.fullmatch(data[start : start + SLOT])
        if match is None or int(match[3], 16) != zlib.crc32(data[start : start + _HEAD]):
            continue
        found = int(match[1]), int(match[2])
        if best is None or found > best:
            best = found
    if best is None:
        raise ValueError(f"{path}: not a saved offset: {data[:40]!r}")
    return best


def read_offset(path: Path) -> int | None:
    """The offset saved in `path`, None if there is no such file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return decode(data, path)[1]


def group_offsets(folder: Path, topic: str) -> dict[str, int | None]:
    """Every group's saved offset of `topic` under `folder`; None where the file is unreadable."""
    found: dict[str, int | None] = {}
    try:
        with os.scandir(folder) as listing:
            entries = list(listing)
    except FileNotFoundError:
        return found
    for entry in entries:
        match = _GROUP_FILE.fullmatch(entry.name)
        if match is None or match[2] != topic:
            continue
        try:
            offset = read_offset(Path(entry.path))
        except (OSError, ValueError) as err:
            logger.warning("unreadable offsets file, treated as offset 0: %s", err)
            offset = None
        found[match[1]] = offset
    return found


class OffsetFile:
    """One group's saved offset of one topic, kept open for in-place writes from the first save.

    The file is opened at the first save, not at load, and its sequence read then: a consumer
    made after another of the same group continues the other's sequence instead of replacing
    its file. Only a missing file, or one in the old format, is created by temp and rename.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._sequence = 0

    def load(self) -> int | None:
        """The saved offset, None when the group never saved one for this topic."""
        return read_offset(self.path)

    def save(self, offset: int) -> None:
        """Write `offset` into the slot not holding the latest sequence (no fsync)."""
        if self._fd is None:
            self._fd = self._open_slots()
        self._sequence += 1
        if self._fd is None:
            self._fd = self._create(offset)
            return
        slot = encode_slot(self._sequence, offset)
        written = os.pwrite(self._fd, slot, (self._sequence % 2) * SLOT)
        if written != SLOT:
            raise OSError(f"{self.path}: short write of a saved offset ({written} bytes)")

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _open_slots(self) -> int | None:
        """The existing file for in-place writes; None if it is missing or in the old format."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        data = os.pread(fd, 2 * SLOT + 1, 0)
        if _LEGACY.fullmatch(data):
            os.close(fd)
            return None
        try:
            self._sequence = decode(data, self.path)[0]
        except ValueError:
            os.close(fd)
            raise
        return fd

    def _create(self, offset: int) -> int:
        """Both slots at once by temp file and rename: a new file is never half written."""
        self.path.parent.mkdir(exist_ok=True)
        data = encode_slot(self._sequence - 1, offset) + encode_slot(self._sequence, offset)
        if self._sequence % 2 == 0:
            data = data[SLOT:] + data[:SLOT]
        fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            os.write(fd, data)
            os.replace(temp, self.path)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
        return fd
