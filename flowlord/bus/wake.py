"""Blocking until a bus folder changes: Linux inotify through ctypes, plus a self-pipe.

A consumer sleeps in `poll()` on two descriptors: an inotify instance watching the bus folder
(so an append by any process wakes it within microseconds) and a pipe that `wake()` writes to
(so `wakeup()` and `close()` from another thread end the wait). Where inotify is unavailable
(not Linux, no libc symbol, instance limit reached) only the pipe is watched and the caller
polls on its own interval.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import logging
import math
import os
import select
from pathlib import Path

logger = logging.getLogger(__name__)

_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = os.O_CLOEXEC
_IN_MODIFY = 0x002
_IN_CLOSE_WRITE = 0x008
_IN_MOVED_TO = 0x080
_IN_CREATE = 0x100
_EVENTS = _IN_MODIFY | _IN_CLOSE_WRITE | _IN_MOVED_TO | _IN_CREATE
_READ = 1 << 16


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """The C library, if it has inotify; loaded once (a read-only handle, not state)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
    if not hasattr(libc, "inotify_init1"):
        return None
    libc.inotify_init1.argtypes = [ctypes.c_int]
    libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    return libc


def open_inotify(folder: Path) -> int | None:
    """A non-blocking inotify descriptor watching appends, creations and renames in `folder`.

    None where inotify cannot be had: quietly where the C library has none (not Linux), with
    a warning where it fails (the per-user instance or watch limit, usually).
    """
    libc = _libc()
    if libc is None:
        logger.debug("no inotify in this C library: polling %s", folder)
        return None
    fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
    if fd < 0:
        logger.warning("inotify_init1: %s: polling %s", os.strerror(ctypes.get_errno()), folder)
        return None
    if libc.inotify_add_watch(fd, os.fsencode(folder), _EVENTS) < 0:
        problem = os.strerror(ctypes.get_errno())
        os.close(fd)
        logger.warning("inotify_add_watch on %s: %s: polling", folder, problem)
        return None
    return fd


class Waker:
    """Sleep until the folder changes, `wake()` is called, or a timeout; close() frees the fds."""

    def __init__(self, folder: Path, *, notify: bool) -> None:
        self._read, self._write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._inotify = open_inotify(folder) if notify else None
        self._poller = select.poll()
        for fd in self._fds():
            self._poller.register(fd, select.POLLIN)

    @property
    def notifies(self) -> bool:
        """Whether changes to the folder end a wait (else only `wake()` and the timeout do)."""
        return self._inotify is not None

    def wait(self, timeout: float) -> None:
        """Block up to `timeout` seconds; drain what woke us so the next wait blocks again.

        Not for concurrent use: callers serialize their waits.
        """
        if self._poller.poll(math.ceil(max(timeout, 0.0) * 1000)):
            for fd in self._fds():
                _drain(fd)

    def wake(self) -> None:
        """End the current or next `wait` (from any thread)."""
        # A full pipe already holds a wake-up: nothing is lost.
        with contextlib.suppress(BlockingIOError):
            os.write(self._write, b"!")

    def close(self) -> None:
        """Close the descriptors; the caller makes sure no thread is in `wait`."""
        for fd in (*self._fds(), self._write):
            os.close(fd)

    def _fds(self) -> tuple[int, ...]:
        return (self._read,) if self._inotify is None else (self._read, self._inotify)


def _drain(fd: int) -> None:
    with contextlib.suppress(BlockingIOError):
        while os.read(fd, _READ):
            pass
