"""Kernel file events through ctypes, shared by the benches that wake on another process's
writes (Linux only)."""

from __future__ import annotations

import ctypes
import os
import select
import struct
from pathlib import Path

IN_MODIFY, IN_MOVED_TO = 0x2, 0x80


class Inotify:
    """Kernel file events through ctypes: a wake within microseconds, no CPU while idle."""

    _EVENT = struct.Struct("iIII")

    def __init__(self, path: Path, mask: int) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self.fd = libc.inotify_init1(os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        if libc.inotify_add_watch(self.fd, os.fsencode(path), mask) < 0:
            os.close(self.fd)
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {path}")

    def events(self, timeout: float | None) -> list[str]:
        """Names of the events that arrived within `timeout` ("" for a watched file)."""
        if not select.select([self.fd], [], [], timeout)[0]:
            return []
        data, names, pos = os.read(self.fd, 1 << 16), [], 0
        while pos < len(data):
            length = self._EVENT.unpack_from(data, pos)[3]
            pos += self._EVENT.size
            names.append(os.fsdecode(data[pos : pos + length].rstrip(b"\0")))
            pos += length
        return names

    def close(self) -> None:
        os.close(self.fd)
