"""The SQL of `SQLiteTaskStore`: fixed texts (apsw's statement cache prepares each once) and
the two listings whose WHERE depends on the filter. Tests check every plan uses an index.

On a new database (no ANALYZE statistics yet) SQLite's planner guesses, and guesses wrong for
the hot queries: it takes the state index and sorts every waiting row, or the workflow index
for one run's records. Those queries name their index (`INDEXED BY`), which also makes them
fail at prepare time, loudly, should the index ever go.
"""

from __future__ import annotations

import functools
from datetime import datetime

from flowlord.state.protocol import TaskFilter
from flowlord.state.rows import (
    ALERT_COLUMNS,
    CONTROL_COLUMNS,
    EVENT_COLUMNS,
    LEASE_COLUMNS,
    MARK_COLUMNS,
    RECORD_COLUMNS,
    TRANSITION_COLUMNS,
    to_text,
)
from workflow.state import ENDS

_RECORDS = f"SELECT {RECORD_COLUMNS} FROM task_records"
FINISHED = f"state IN ({', '.join(repr(end.value) for end in sorted(ENDS))})"

GET = f"{_RECORDS} WHERE rec = ?"
EXISTS = "SELECT 1 FROM task_records WHERE rec = ?"
# Usually one row; the caller takes the newest. `ORDER BY rec DESC LIMIT 1` (or ASC), though
# the index yields that order, made this lookup 5x slower here: 35 µs instead of 6.
FIND_ATTEMPT = f"{_RECORDS} WHERE id = ? AND type = ? AND job = ? AND attempt = ? AND info = ?"
COMPLETED = (
    "SELECT type, job FROM task_records INDEXED BY idx_records_attempt "
    "WHERE id = ? AND workflow = ? AND state = 'complete'"
)
RUN = f"{_RECORDS} WHERE id = ? ORDER BY rec"
QUEUED = f"{_RECORDS} WHERE state = 'queued' ORDER BY rec"
WAITING = (
    f"{_RECORDS} INDEXED BY idx_records_waiting WHERE state = 'waiting' AND due <= ? "
    "ORDER BY due, rec"
)
STUCK = (
    f"{_RECORDS} INDEXED BY idx_records_sent WHERE state = 'sent' AND deadline <= ? "
    "AND NOT EXISTS ("
    "SELECT 1 FROM alert_records WHERE alert_records.rec = task_records.rec "
    "AND alert_records.kind = 'stuck') ORDER BY deadline, rec"
)
TRANSITIONS = f"SELECT {TRANSITION_COLUMNS} FROM task_transitions WHERE rec = ? ORDER BY rowid"
MARKS = f"SELECT {MARK_COLUMNS} FROM cron_marks WHERE workflow = ?"

# Not `ON CONFLICT DO NOTHING`: that uses up an AUTOINCREMENT rec for each key it ignores.
# A plain INSERT: a second record with an origin key fails on its UNIQUE index, and the
# failed statement is undone whole, so it takes no rec number (AUTOINCREMENT's counter too).
INSERT = (
    "INSERT INTO task_records (id, type, job, info, meta, workflow, phase, attempt, origin, "
    "origin_key, state, created, due, sent, deadline, updated) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


@functools.lru_cache(maxsize=64)
def update(columns: tuple[str, ...]) -> str:
    """A move's UPDATE, setting the state, `columns` and `updated` where the row is in the
    state the move starts from; only what changes is written (a move sets two or three)."""
    sets = "".join(f", {column} = ?" for column in columns)
    return f"UPDATE task_records SET state = ?{sets}, updated = ? WHERE rec = ? AND state = ?"


AUDIT = (
    "INSERT INTO task_transitions (rec, from_state, to_state, reason, actor, at) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
ALERT = (
    "INSERT INTO alert_records (at, kind, workflow, phase, rec, message) VALUES (?, ?, ?, ?, ?, ?)"
)
MARK = (
    "INSERT INTO cron_marks (workflow, phase, fired) VALUES (?, ?, ?) "
    "ON CONFLICT (workflow, phase) DO UPDATE SET fired = excluded.fired"
)

LEASE = f"SELECT {LEASE_COLUMNS} FROM leader_lease"
HOLDS = "SELECT 1 FROM leader_lease WHERE holder = ? AND expires > ?"
SET_LEASE = (
    "INSERT INTO leader_lease (one, holder, expires, acquired) VALUES (1, ?, ?, ?) "
    "ON CONFLICT (one) DO UPDATE SET holder = excluded.holder, expires = excluded.expires, "
    "acquired = excluded.acquired"
)
RELEASE = "DELETE FROM leader_lease WHERE holder = ?"

CONTROLS = f"SELECT {CONTROL_COLUMNS} FROM workflow_controls ORDER BY workflow, phase"
CONTROL = f"SELECT {CONTROL_COLUMNS} FROM workflow_controls WHERE workflow = ? AND phase = ?"
PAUSED = f"SELECT {CONTROL_COLUMNS} FROM workflow_controls WHERE enabled = 0"
SET_CONTROL = (
    "INSERT INTO workflow_controls (workflow, phase, enabled, reason, updated_by, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (workflow, phase) DO UPDATE SET "
    "enabled = excluded.enabled, reason = excluded.reason, updated_by = excluded.updated_by, "
    "updated_at = excluded.updated_at"
)
CONTROL_EVENT = (
    "INSERT INTO control_events (at, workflow, phase, actor, from_enabled, to_enabled, reason, "
    "released, discarded) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
EVENTS = f"SELECT {EVENT_COLUMNS} FROM control_events ORDER BY seq DESC"
WORKFLOW_EVENTS = f"SELECT {EVENT_COLUMNS} FROM control_events WHERE workflow = ? ORDER BY seq DESC"
SEE = "INSERT OR IGNORE INTO workflow_seen (workflow, first_seen) VALUES (?, ?)"
# Held rows are few (a paused workflow's); the state index finds them.
HELD = f"{_RECORDS} WHERE state = 'held' AND workflow = ? ORDER BY rec"
HELD_PHASE = f"{_RECORDS} WHERE state = 'held' AND workflow = ? AND phase = ? ORDER BY rec"

STATES = "SELECT state, count(*) FROM task_records GROUP BY state"
YOUNGER = "SELECT count(*) FROM task_records WHERE created > ?"
# The index is named: for the GROUP BY, the planner would walk the workflow index over every
# row. With no lower bound, `''` (every time text sorts after it) reads all rows about as fast
# as a table scan.
COUNTS = (
    "SELECT workflow, state, count(*) FROM task_records INDEXED BY idx_records_created "
    "WHERE created >= ? GROUP BY workflow, state ORDER BY workflow, state"
)
ALERT_COUNT = "SELECT count(*) FROM alert_records"

PURGE_ALERTS = (
    "DELETE FROM alert_records WHERE seq IN "
    "(SELECT seq FROM alert_records WHERE at < ? ORDER BY at, seq LIMIT ?)"
)
PURGE_PICK = (
    f"SELECT rec FROM task_records INDEXED BY idx_records_created WHERE created < ?1 "
    f"AND updated < ?1 AND {FINISHED} ORDER BY created, rec LIMIT ?2"
)
PURGE_TRANSITIONS = "DELETE FROM task_transitions WHERE rec IN (SELECT value FROM json_each(?))"
PURGE_RECORDS = "DELETE FROM task_records WHERE rec IN (SELECT value FROM json_each(?))"


def tasks_query(where: TaskFilter) -> tuple[str, list[object]]:
    """`tasks()`: the filters ANDed, newest first. No LIMIT: the caller stops after `limit`
    readable rows, and the planner, not told it will stop early, keeps to the filter's index."""
    clauses: list[str] = []
    params: list[object] = []
    for column, value in (
        ("state", where.state),
        ("type", where.type),
        ("job", where.job),
        ("workflow", where.workflow),
        ("id", where.id),
    ):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(str(value))
    for clause, when in (("created >= ?", where.since), ("created < ?", where.until)):
        if when is not None:
            clauses.append(clause)
            params.append(to_text(when))
    if where.before is not None:
        clauses.append("rec < ?")
        params.append(where.before)
    return f"{_RECORDS}{_where(clauses)} ORDER BY rec DESC", params


def alerts_query(since: datetime | None, kind: str | None) -> tuple[str, list[object]]:
    """`alerts()`: newest first, from `since` (inclusive), of one kind."""
    clauses: list[str] = []
    params: list[object] = []
    if since is not None:
        clauses.append("at >= ?")
        params.append(to_text(since))
    if kind is not None:
        clauses.append("kind = ?")
        params.append(kind)
    return f"SELECT {ALERT_COLUMNS} FROM alert_records{_where(clauses)} ORDER BY seq DESC", params


def _where(clauses: list[str]) -> str:
    return f" WHERE {' AND '.join(clauses)}" if clauses else ""
