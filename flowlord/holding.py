"""The taskmaster's view of the workflow controls: what is paused, read where records are made
or sent, and failing open.

`store.paused()` is cheap (the SQLite store reads the table again only after another
connection commits), so it is asked inside each transaction that creates or sends records:
a record is held only by a pause that is committed, and a resume that committed first is
always seen. If the controls cannot be read, every workflow runs (fail open): an error is
logged, at most once a minute, and each failure is counted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from flowlord.loop import Counters
from flowlord.state import LeaseLost, TaskStore
from workflow.controls import NOTHING_PAUSED, Control, Paused, held_reason
from workflow.state import State

log = logging.getLogger("flowlord.taskmaster")

LOG_EVERY = timedelta(minutes=1)


class ControlGate:
    """`gate()` gives the pauses in force, or none (fail open) when they cannot be read."""

    def __init__(
        self, store: TaskStore, counters: Counters, *, now: Callable[[], datetime]
    ) -> None:
        self._store = store
        self._counters = counters
        self._now = now
        self._logged: datetime | None = None

    def __call__(self) -> Paused:
        try:
            return self._store.paused()
        except LeaseLost:
            raise
        except Exception as err:
            self._counters.control_errors += 1
            now = self._now()
            if self._logged is None or now - self._logged >= LOG_EVERY:
                self._logged = now
                log.error("cannot read the workflow controls: %s: %s; every workflow runs "
                          "(fail open; %d failure(s) so far)", type(err).__name__, err,
                          self._counters.control_errors)  # fmt: skip
            return NOTHING_PAUSED


def birth(paused: Paused, workflow: str, phase: str, reason: str) -> tuple[State, str]:
    """The state a new record to be sent is born in, and the reason its transition gives:
    `held` (saying by which pause) while its workflow or phase is paused, else `queued`."""
    control: Control | None = paused.holds(workflow, phase)
    if control is None:
        return State.QUEUED, reason
    return State.HELD, f"{reason}; {held_reason(control)}"
