"""SIGINT and SIGTERM for a worker: the first asks for a graceful stop, the second for one now."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


@contextlib.contextmanager
def stop_requests() -> Iterator[tuple[threading.Event, threading.Event]]:
    """`(stop, stop_now)`, set by the first and the second SIGINT or SIGTERM while the block
    runs; the old handlers come back after. Main thread only (Python's rule for signals)."""
    stop, stop_now = threading.Event(), threading.Event()

    def handle(_signum: int, _frame: FrameType | None) -> None:
        # No logging here: a handler that writes to a stream the main thread is writing to
        # raises "reentrant call"; the runtime logs what it does about the request.
        (stop_now if stop.is_set() else stop).set()

    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, handle) for signum in signals}
    try:
        yield stop, stop_now
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
