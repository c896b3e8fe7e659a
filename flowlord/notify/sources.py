"""What the producer reads past its cursors: task transitions, control events, alerts, and the
workflow files named by the watcher. Every function runs inside `DeliveryQueue.writing`, so what
it reads and the cursor it moves commit together with the deliveries made of them. The API's
event stream reads the same rows past cursors of its own (kept in memory, on its own connection).

Hook records are JSON-ready: column names as in the tables, times as RFC 3339 UTC (a stored time
that cannot be read is passed on as stored; an event time that cannot be read becomes `now`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import apsw

from workflow.task import rfc3339

TRANSITIONS, CONTROLS, ALERTS = "transitions", "controls", "alerts"

_RECORD = (
    "rec", "id", "type", "job", "info", "meta", "workflow", "phase", "attempt", "origin",
    "result", "msg", "created", "due", "sent", "started", "ended",
)  # fmt: skip
_TIMES = {"created", "due", "sent", "started", "ended"}
_TRANSITIONS = (
    f"SELECT t.rowid, t.at, t.from_state, t.to_state, t.reason, t.actor, "
    f"{', '.join('r.' + name for name in _RECORD)} "
    "FROM task_transitions t JOIN task_records r ON r.rec = t.rec "
    "WHERE t.rowid > ? AND t.rowid <= ? AND t.to_state IN (SELECT value FROM json_each(?)) "
    "ORDER BY t.rowid LIMIT ?"
)
_CONTROLS = (
    "SELECT seq, at, workflow, phase, actor, from_enabled, to_enabled, reason, released, "
    "discarded FROM control_events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?"
)
_ALERTS = (
    "SELECT seq, at, kind, workflow, phase, rec, message FROM alert_records "
    "WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?"
)
_TOPS = {
    TRANSITIONS: "SELECT coalesce(max(rowid), 0) FROM task_transitions",
    CONTROLS: "SELECT coalesce(max(seq), 0) FROM control_events",
    ALERTS: "SELECT coalesce(max(seq), 0) FROM alert_records",
}
_PAST = {
    TRANSITIONS: "SELECT count(*), max(rowid) FROM task_transitions WHERE rowid > ?",
    CONTROLS: "SELECT count(*), max(seq) FROM control_events WHERE seq > ?",
    ALERTS: "SELECT count(*), max(seq) FROM alert_records WHERE seq > ?",
}


@dataclass(frozen=True, slots=True)
class Event:
    """One hook event: its name, when it happened, and its record."""

    name: str
    at: datetime
    record: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AlertRow:
    kind: str
    workflow: str
    phase: str
    message: str


@dataclass(frozen=True, slots=True)
class PendingAlerts:
    """The alerts past the cursor not yet notified: how many, the first few, the seq range."""

    count: int
    first: list[AlertRow]
    seqs: tuple[int, int]


def cursor(db: apsw.Connection, source: str) -> int | None:
    rows = db.execute("SELECT position FROM delivery_cursors WHERE source = ?", (source,))
    found = rows.fetchall()
    return found[0][0] if found else None


def move_cursor(db: apsw.Connection, source: str, position: int) -> None:
    db.execute(
        "INSERT INTO delivery_cursors (source, position) VALUES (?, ?) "
        "ON CONFLICT (source) DO UPDATE SET position = excluded.position",
        (source, position),
    )


def drop_cursor(db: apsw.Connection, source: str) -> None:
    db.execute("DELETE FROM delivery_cursors WHERE source = ?", (source,))


def top(db: apsw.Connection, source: str) -> int:
    """The newest row of a source: where a new task or control cursor starts (no replay)."""
    return db.execute(_TOPS[source]).fetchall()[0][0]


def skip(db: apsw.Connection, source: str, after: int) -> tuple[int, int]:
    """How many rows of a source lie past `after`, and the newest: a reader that cannot keep
    up jumps there, saying how many it passed over."""
    count, newest = db.execute(_PAST[source], (after,)).fetchall()[0]
    return count, after if newest is None else newest


def transitions(
    db: apsw.Connection, after: int, events: Mapping[str, str], *, limit: int, now: datetime
) -> tuple[list[Event], int]:
    """Transitions past rowid `after` to a state of `events` (to_state: event name), in order,
    and the new cursor: the last row read when `limit` cut the batch, else the newest
    transition (rows to other states are passed over). A cursor past the newest row (the
    table emptied by retention, rowids reused) starts again from the first row."""
    found: list[Event] = []
    states = json.dumps(sorted(events))
    rows, position = _page(db, TRANSITIONS, _TRANSITIONS, after, limit, states)
    for rowid, at, was, to, reason, actor, *record in rows:
        fields = dict(zip(_RECORD, record, strict=True))
        fields.update({name: _json_time(fields[name]) for name in _TIMES})
        fields.update(from_state=was, to_state=to, reason=reason, actor=actor, transition=rowid)
        found.append(Event(events[to], _time(at, now), fields))
    return found, position


def controls(
    db: apsw.Connection, after: int, *, limit: int, now: datetime
) -> tuple[list[Event], int]:
    """Pauses and resumes past seq `after` as `workflow.paused`/`workflow.resumed`, and the new
    cursor. A cursor past the newest row starts again from the first, as for transitions."""
    found: list[Event] = []
    rows, position = _page(db, CONTROLS, _CONTROLS, after, limit)
    for seq, at, workflow, phase, actor, was, to, reason, released, discarded in rows:
        record = {
            "seq": seq, "workflow": workflow, "phase": phase, "actor": actor, "reason": reason,
            "from_enabled": None if was is None else bool(was), "to_enabled": bool(to),
            "released": released, "discarded": discarded,
        }  # fmt: skip
        name = "workflow.resumed" if to else "workflow.paused"
        found.append(Event(name, _time(at, now), record))
    return found, position


def alerts(
    db: apsw.Connection, after: int, *, limit: int, now: datetime
) -> tuple[list[Event], int]:
    """Alerts past seq `after` as `alert` events (notified or not), and the new cursor, as
    for control events."""
    found: list[Event] = []
    rows, position = _page(db, ALERTS, _ALERTS, after, limit)
    for seq, at, kind, workflow, phase, rec, message in rows:
        record = {"seq": seq, "kind": kind, "workflow": workflow, "phase": phase, "rec": rec,
                  "message": message}  # fmt: skip
        found.append(Event("alert", _time(at, now), record))
    return found, position


def _page(
    db: apsw.Connection, source: str, query: str, after: int, limit: int, *params: object
) -> tuple[list[tuple], int]:
    """Up to `limit` rows of `query` past `after` (bound to the newest row, so what commits
    meanwhile waits for the next read), and the new cursor: the last row read when `limit`
    cut the page, else the newest. A cursor past the newest row starts again from the first."""
    newest = top(db, source)
    if after > newest:
        after = 0
    rows = db.execute(query, (after, newest, *params, limit)).fetchall()
    return rows, rows[-1][0] if len(rows) == limit else newest


def workflow_file(db: apsw.Connection, key: str, error: str, now: datetime) -> Event:
    """The event of a key the watcher reported: `workflow.error` with the error that kept the
    file from loading, else `workflow.changed` ("-key" is a removed file)."""
    if error:
        return Event("workflow.error", now, {"workflow": key, "error": error})
    if key.startswith("-"):
        return Event("workflow.changed", now, {"workflow": key[1:], "removed": True})
    rows = db.execute("SELECT file_hash FROM workflow_files WHERE file_path = ?", (key,)).fetchall()
    file_hash = rows[0][0] if rows else ""
    return Event("workflow.changed", now, {"workflow": key, "removed": False, "hash": file_hash})


def pending_alerts(db: apsw.Connection, after: int, *, shown: int) -> PendingAlerts | None:
    """Alerts past seq `after` not yet notified, or None when there are none."""
    count, first, last = db.execute(
        "SELECT count(*), min(seq), max(seq) FROM alert_records WHERE seq > ? AND notified IS NULL",
        (after,),
    ).fetchall()[0]
    if not count:
        return None
    rows = db.execute(
        "SELECT kind, workflow, phase, message FROM alert_records "
        "WHERE seq > ? AND notified IS NULL ORDER BY seq LIMIT ?",
        (after, shown),
    ).fetchall()
    return PendingAlerts(count, [AlertRow(*row) for row in rows], (first, last))


def _time(text: object, now: datetime) -> datetime:
    try:
        return datetime.fromisoformat(text).astimezone(UTC)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return now


def _json_time(value: object) -> object:
    try:
        return rfc3339(datetime.fromisoformat(value).astimezone(UTC))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return value
