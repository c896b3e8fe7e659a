"""The task state machine: the states of a task record, and the one table of allowed moves.

Pure data and one check: every store refuses what `check_transition` refuses, before it writes.
A record is born in a state (`None` stands for "no record yet"); the ends are final: a retry or
a manual re-run is a new record, never a way back.
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType


class State(StrEnum):
    """Where one attempt of one task stands."""

    WAITING = "waiting"  # due later: a retry
    HELD = "held"  # its workflow or phase is paused
    QUEUED = "queued"  # committed, to be sent
    SENT = "sent"  # on the bus, no done yet
    COMPLETE = "complete"
    ERROR = "error"  # this attempt failed and a retry record exists
    FAILED = "failed"  # no retry left, or the result was `alert`
    WARNED = "warned"
    CANCELLED = "cancelled"


class Origin(StrEnum):
    """Why a record exists."""

    CRON = "cron"
    CHILD = "child"
    RETRY = "retry"
    FILE = "file"
    BACKLOAD = "backload"
    MANUAL = "manual"
    EXTERNAL = "external"  # a done message for a task flowlord never sent


ENDS = frozenset({State.COMPLETE, State.ERROR, State.FAILED, State.WARNED, State.CANCELLED})
DONE_ENDS = ENDS - {State.CANCELLED}
"""Where a done message can take a record."""

TRANSITIONS: MappingProxyType[State | None, frozenset[State]] = MappingProxyType(
    {
        # A new record: a retry waits, a paused workflow holds, the rest is queued to send;
        # an external done's record is born as sent (somebody sent it).
        None: frozenset({State.WAITING, State.HELD, State.QUEUED, State.SENT}),
        State.WAITING: frozenset({State.QUEUED, State.HELD, State.CANCELLED}),
        State.HELD: frozenset({State.QUEUED, State.CANCELLED}),
        # A done may find a record still queued: sent, then the process died before marking it.
        State.QUEUED: frozenset({State.SENT, State.HELD, State.CANCELLED, *DONE_ENDS}),
        State.SENT: frozenset({State.CANCELLED, *DONE_ENDS}),
        **{end: frozenset() for end in ENDS},
    }
)


class IllegalTransition(ValueError):
    """A move the table refuses; names the record and both states. Nothing was written."""

    def __init__(self, rec: int | None, from_state: State | None, to_state: State) -> None:
        self.rec = rec
        self.from_state = from_state
        self.to_state = to_state
        where = f"record {rec}" if rec is not None else "a new record"
        was = f"from {from_state.value}" if from_state is not None else "as a new record"
        allowed = ", ".join(sorted(TRANSITIONS[from_state])) or "nothing: it is finished"
        super().__init__(f"{where} cannot go {was} to {to_state.value} (allowed: {allowed})")


def check_transition(rec: int | None, from_state: State | None, to_state: State) -> None:
    """Raise `IllegalTransition` unless the table allows `from_state` -> `to_state`."""
    if to_state not in TRANSITIONS[from_state]:
        raise IllegalTransition(rec, from_state, to_state)


def done_state(result: str, *, retried: bool) -> State:
    """The end a done message's result leads to: `error` is an end of its own only when a
    retry record was made; without one the attempt has failed."""
    match result:
        case "complete":
            return State.COMPLETE
        case "error":
            return State.ERROR if retried else State.FAILED
        case "alert":
            return State.FAILED
        case "warn":
            return State.WARNED
    raise ValueError(f"a done message needs a result, got {result!r}")
