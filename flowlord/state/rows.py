"""Rows of the task-state tables to values and back; a row that is not ours is CorruptRecord.

Times are stored as fixed-width UTC text, `2026-11-21T12:00:00.000000Z`: text order is time
order, so `due <= ?` is a range on an index, and any reader (the sqlite3 shell, a PostgreSQL
port) can read them. Anything else in a time column is corruption, not a format to guess at.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeVar

from flowlord.state.protocol import Alert, CorruptRecord, Lease, TaskRecord, Transition
from workflow.controls import Control, ControlEvent
from workflow.state import Origin, State

TIME_WIDTH = len("2026-11-21T12:00:00.000000Z")
# Enum lookups by value without Enum.__call__, which costs ~0.5 µs a call on the hot path.
_STATES = {state.value: state for state in State}
_ORIGINS = {origin.value: origin for origin in Origin}

RECORD_COLUMNS = (
    "rec, id, type, job, info, meta, workflow, phase, attempt, origin, origin_key, state, "
    "result, msg, created, due, sent, started, ended, deadline, updated"
)
TRANSITION_COLUMNS = "rowid, rec, from_state, to_state, reason, actor, at"
ALERT_COLUMNS = "seq, at, kind, workflow, phase, rec, message, notified"
LEASE_COLUMNS = "holder, expires, acquired"
T = TypeVar("T")
MARK_COLUMNS = "phase, fired"
CONTROL_COLUMNS = "workflow, phase, enabled, reason, updated_by, updated_at"
EVENT_COLUMNS = (
    "seq, at, workflow, phase, actor, from_enabled, to_enabled, reason, released, discarded"
)
_SWITCH = {0: False, 1: True}


def to_text(when: datetime) -> str:
    """An aware datetime as fixed-width UTC text (a naive one is refused: its zone is unknown)."""
    offset = when.utcoffset()
    if offset is None:
        raise ValueError(f"task state times must be aware datetimes, got naive {when!r}")
    if offset:
        when = when.astimezone(UTC)
    return when.isoformat(timespec="microseconds")[:-6] + "Z"  # "+00:00" -> "Z"


def maybe_text(when: datetime | None) -> str | None:
    return None if when is None else to_text(when)


def _time(text: object, column: str) -> datetime:
    if isinstance(text, str) and len(text) == TIME_WIDTH and text[-1] == "Z":
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    raise ValueError(f"{column} is {text!r}, not a time like 2026-11-21T12:00:00.000000Z")


def _maybe_time(text: object, column: str) -> datetime | None:
    return None if text is None else _time(text, column)


def _member(members: dict[str, T], value: object, column: str) -> T:
    try:
        return members[value]  # type: ignore[index]
    except (KeyError, TypeError):
        raise ValueError(f"{column} is {value!r}, not one of {', '.join(members)}") from None


def _integer(value: object, column: str) -> int:
    if type(value) is not int:
        raise ValueError(f"{column} is {value!r}, not an integer")
    return value


def record(row: tuple) -> TaskRecord:
    """A `task_records` row (in RECORD_COLUMNS order) as a TaskRecord."""
    try:
        return TaskRecord(
            rec=row[0], id=row[1], type=row[2], job=row[3], info=row[4], meta=row[5],
            workflow=row[6], phase=row[7], attempt=_integer(row[8], "attempt"),
            origin=_member(_ORIGINS, row[9], "origin"), origin_key=row[10],
            state=_member(_STATES, row[11], "state"), result=row[12],
            msg=row[13], created=_time(row[14], "created"), due=_maybe_time(row[15], "due"),
            sent=_maybe_time(row[16], "sent"), started=_maybe_time(row[17], "started"),
            ended=_maybe_time(row[18], "ended"), deadline=_maybe_time(row[19], "deadline"),
            updated=_time(row[20], "updated"),
        )  # fmt: skip
    except ValueError as err:
        raise CorruptRecord("task_records", row[0], str(err)) from None


def transition(row: tuple) -> Transition:
    """A `task_transitions` row (TRANSITION_COLUMNS); `from_state` '' is a new record's."""
    rowid, rec, was, to, reason, actor, at = row
    try:
        return Transition(
            rec=rec, from_state=State(was) if was else None, to_state=State(to),
            reason=reason, actor=actor, at=_time(at, "at"),
        )  # fmt: skip
    except ValueError as err:
        raise CorruptRecord("task_transitions", f"{rowid} (rec {rec})", str(err)) from None


def alert(row: tuple) -> Alert:
    seq, at, kind, workflow, phase, rec, message, notified = row
    try:
        return Alert(
            seq=seq, at=_time(at, "at"), kind=kind, workflow=workflow, phase=phase, rec=rec,
            message=message, notified=_maybe_time(notified, "notified"),
        )  # fmt: skip
    except ValueError as err:
        raise CorruptRecord("alert_records", seq, str(err)) from None


def lease(row: tuple) -> Lease:
    holder, expires, acquired = row
    try:
        return Lease(
            holder=holder, expires=_time(expires, "expires"), acquired=_time(acquired, "acquired")
        )
    except ValueError as err:
        raise CorruptRecord("leader_lease", holder, str(err)) from None


def mark(row: tuple, workflow: str) -> datetime:
    phase, fired = row
    try:
        return _time(fired, "fired")
    except ValueError as err:
        raise CorruptRecord("cron_marks", f"{workflow} {phase}", str(err)) from None


def control(row: tuple) -> Control:
    workflow, phase, enabled, reason, updated_by, updated_at = row
    try:
        return Control(
            workflow=workflow, phase=phase, enabled=_member(_SWITCH, enabled, "enabled"),
            reason=reason, updated_by=updated_by, updated_at=_time(updated_at, "updated_at"),
        )  # fmt: skip
    except ValueError as err:
        raise CorruptRecord("workflow_controls", f"{workflow} {phase}".strip(), str(err)) from None


def control_event(row: tuple) -> ControlEvent:
    seq, at, workflow, phase, actor, was, to, reason, released, discarded = row
    try:
        return ControlEvent(
            seq=seq, at=_time(at, "at"), workflow=workflow, phase=phase, actor=actor,
            from_enabled=None if was is None else _member(_SWITCH, was, "from_enabled"),
            to_enabled=_member(_SWITCH, to, "to_enabled"), reason=reason,
            released=_integer(released, "released"), discarded=_integer(discarded, "discarded"),
        )  # fmt: skip
    except ValueError as err:
        raise CorruptRecord("control_events", seq, str(err)) from None
