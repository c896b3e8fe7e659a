"""Stopping on SIGINT/SIGTERM within two seconds, whatever the process is doing.

In its loop the taskmaster looks at the stop event between units of work; a long start-up (a
cold load of thousands of workflow files) instead asks to be interrupted: a signal then raises
`Interrupted` in the main thread, and every write it cuts short is rolled back by its
transaction.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class Interrupted(BaseException):
    """A stop signal arrived during a step that asked to be interrupted.

    A `BaseException`, as KeyboardInterrupt is: the edges that contain the failures of one unit
    (`except Exception`, per file or per message) must let it through.
    """


class Shutdown(threading.Event):
    """Set by a stop signal; `interruptible()` marks a step a signal may cut short."""

    def __init__(self) -> None:
        super().__init__()
        self._interruptible = False

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        """The signal handler: set the event, and interrupt an interruptible step."""
        self.set()
        if self._interruptible:
            self._interruptible = False
            raise Interrupted(f"stopped by {signal.Signals(signum).name}")

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        """Within the block, a stop signal raises `Interrupted` at once (also if it came
        before the block)."""
        if self.is_set():
            raise Interrupted("stopped before start-up finished")
        self._interruptible = True
        try:
            yield
        finally:
            self._interruptible = False


@contextlib.contextmanager
def stop_on_signals() -> Iterator[Shutdown]:
    """A `Shutdown` set by SIGINT or SIGTERM while the block runs; old handlers come back."""
    shutdown = Shutdown()
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, shutdown.handle) for signum in signals}
    try:
        yield shutdown
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
