"""The source of `/api/events`' task, control and alert events: committed rows, by any process.

One `ChangePoller` thread per API reads past its cursors on its own connection every `EVERY`
seconds, but only after `PRAGMA data_version` says another connection committed, so an idle
database costs one pragma a poll. It publishes to the `EventHub` the streams read.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from datetime import datetime

import apsw

from flowlord.notify import sources
from flowlord.state.schema import connect
from handlers.hub import EventHub
from workflow.state import State
from workflow.task import rfc3339

log = logging.getLogger("flowlord.api")

EVERY = 0.25  # seconds between polls: a change is announced well within DESIGN's second
BURST = 100  # rows of one kind published per poll, the rest as one event: at most ~400/s a kind
_EVERY_STATE = {state.value: "task.changed" for state in State}
_READERS = {
    sources.TRANSITIONS: functools.partial(sources.transitions, events=_EVERY_STATE),
    sources.CONTROLS: sources.controls,
    sources.ALERTS: sources.alerts,
}
_NAMES = {sources.TRANSITIONS: "task.changed", sources.CONTROLS: "control.changed",
          sources.ALERTS: "alert"}  # fmt: skip


class ChangePoller:
    """Publishes to `hub` the task transitions, control events and alerts committed after
    `start()`, by any process, until `stop()`; a failing poll is logged and the next one
    goes on. While nobody listens it only moves its cursors, so a client never gets a
    backlog of what happened before it came."""

    def __init__(
        self,
        db_path: str,
        hub: EventHub,
        *,
        now: Callable[[], datetime],
        every: float = EVERY,
        burst: int = BURST,
    ) -> None:
        self._db_path = db_path
        self._hub = hub
        self._now = now
        self._every = every
        self._burst = burst
        self._db: apsw.Connection | None = None
        self._cursors: dict[str, int] = {}
        self._version = -1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flowlord-events", daemon=True)

    def start(self) -> ChangePoller:
        """Open the connection and set the cursors at the newest rows, then poll."""
        self._db = db = connect(self._db_path)
        self._version = _data_version(db)
        self._cursors = {source: sources.top(db, source) for source in _READERS}
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._db is not None and not self._thread.is_alive():
            self._db.close()
            self._db = None

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self.poll()
            except Exception:
                log.exception("reading changes for /api/events failed; trying again")

    def poll(self) -> None:
        """One look: nothing unless another connection committed since the last."""
        db = self._db
        if db is None:
            return
        version = _data_version(db)
        if version == self._version:
            return
        self._version = version
        listening = self._hub.subscribers > 0
        for source in _READERS:
            if listening:
                self._publish(db, source)
            else:
                self._cursors[source] = sources.top(db, source)

    def _publish(self, db: apsw.Connection, source: str) -> None:
        name, read = _NAMES[source], _READERS[source]
        found, cursor = read(db, self._cursors[source], limit=self._burst, now=self._now())
        for event in found:
            self._hub.publish(name, {**event.record, "at": rfc3339(event.at)})
        if len(found) == self._burst:
            passed, cursor = sources.skip(db, source, cursor)
            if passed:
                self._hub.publish(name, {"coalesced": passed, "through": cursor})
        self._cursors[source] = cursor


def _data_version(db: apsw.Connection) -> int:
    return db.execute("PRAGMA data_version").fetchall()[0][0]
