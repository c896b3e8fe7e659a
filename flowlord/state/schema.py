"""The task-state tables in the cache's database file: connection settings and migrations.

The cache owns `PRAGMA user_version`, so task state keeps its own version in
`schema_versions(component, version)`: either side may open (and create) the file first,
and each migrates only its own tables, in one `BEGIN IMMEDIATE` transaction.
"""

from __future__ import annotations

import os

import apsw

from cache.schema import migrate_component, open_database

COMPONENT = "task_state"
SYNCHRONOUS = ("FULL", "NORMAL")

# Every index costs each insert (and each move, for those on `state`) several µs: there is
# one per question the protocol asks, and no more. Partial indexes keep two hot queries
# small: only waiting rows carry `due` and only sent rows `deadline`; a query must repeat
# the index's WHERE term verbatim for SQLite to use it (tests check every plan). Purging
# walks `created`: a record last updated before the cutoff was created before it too.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE task_records (
      rec INTEGER PRIMARY KEY AUTOINCREMENT,
      id TEXT NOT NULL,
      type TEXT NOT NULL,
      job TEXT NOT NULL DEFAULT '',
      info TEXT NOT NULL DEFAULT '',
      meta TEXT NOT NULL DEFAULT '',
      workflow TEXT NOT NULL DEFAULT '',
      phase TEXT NOT NULL DEFAULT '',
      attempt INTEGER NOT NULL DEFAULT 0,
      origin TEXT NOT NULL,
      origin_key TEXT NOT NULL UNIQUE,
      state TEXT NOT NULL,
      result TEXT NOT NULL DEFAULT '',
      msg TEXT NOT NULL DEFAULT '',
      created TEXT NOT NULL,
      due TEXT,
      sent TEXT,
      started TEXT,
      ended TEXT,
      deadline TEXT,
      updated TEXT NOT NULL
    );
    CREATE INDEX idx_records_attempt ON task_records (id, type, job, attempt, info);
    CREATE INDEX idx_records_state ON task_records (state);
    CREATE INDEX idx_records_workflow ON task_records (workflow);
    CREATE INDEX idx_records_type ON task_records (type, job);
    CREATE INDEX idx_records_created ON task_records (created);
    CREATE INDEX idx_records_waiting ON task_records (due) WHERE state = 'waiting';
    CREATE INDEX idx_records_sent ON task_records (deadline) WHERE state = 'sent';
    CREATE TABLE task_transitions (
      rec INTEGER NOT NULL REFERENCES task_records (rec) ON DELETE CASCADE,
      from_state TEXT NOT NULL,
      to_state TEXT NOT NULL,
      reason TEXT NOT NULL DEFAULT '',
      actor TEXT NOT NULL DEFAULT '',
      at TEXT NOT NULL
    );
    CREATE INDEX idx_transitions_rec ON task_transitions (rec);
    CREATE TABLE alert_records (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      at TEXT NOT NULL,
      kind TEXT NOT NULL,
      workflow TEXT NOT NULL DEFAULT '',
      phase TEXT NOT NULL DEFAULT '',
      rec INTEGER REFERENCES task_records (rec) ON DELETE SET NULL,
      message TEXT NOT NULL,
      notified TEXT
    );
    CREATE INDEX idx_alerts_at ON alert_records (at);
    CREATE INDEX idx_alerts_kind ON alert_records (kind);
    CREATE INDEX idx_alerts_rec ON alert_records (rec, kind);
    CREATE TABLE cron_marks (
      workflow TEXT NOT NULL,
      phase TEXT NOT NULL,
      fired TEXT NOT NULL,
      PRIMARY KEY (workflow, phase)
    );
    CREATE TABLE leader_lease (
      one INTEGER PRIMARY KEY CHECK (one = 1),
      holder TEXT NOT NULL,
      expires TEXT NOT NULL,
      acquired TEXT NOT NULL
    );
    """,
    # DESIGN §5: per-workflow (phase '') and per-phase switches, and the audit of each change.
    # `from_enabled` is NULL for the first change of a (workflow, phase). `workflow_seen`: the
    # files a taskmaster has scheduled, so `paused_at_creation` pauses only new ones; files that
    # made records or fired before this table existed count as seen.
    """
    CREATE TABLE workflow_controls (
      workflow TEXT NOT NULL,
      phase TEXT NOT NULL DEFAULT '',
      enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),
      reason TEXT NOT NULL DEFAULT '',
      updated_by TEXT NOT NULL DEFAULT '',
      updated_at TEXT NOT NULL,
      PRIMARY KEY (workflow, phase)
    );
    CREATE TABLE control_events (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      at TEXT NOT NULL,
      workflow TEXT NOT NULL,
      phase TEXT NOT NULL DEFAULT '',
      actor TEXT NOT NULL DEFAULT '',
      from_enabled INTEGER,
      to_enabled INTEGER NOT NULL,
      reason TEXT NOT NULL DEFAULT '',
      released INTEGER NOT NULL DEFAULT 0,
      discarded INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX idx_control_events_workflow ON control_events (workflow, seq);
    CREATE TABLE workflow_seen (
      workflow TEXT PRIMARY KEY,
      first_seen TEXT NOT NULL
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO workflow_seen (workflow, first_seen)
      SELECT DISTINCT workflow, strftime('%Y-%m-%dT%H:%M:%f000Z', 'now') FROM task_records
      WHERE workflow != ''
      UNION SELECT DISTINCT workflow, strftime('%Y-%m-%dT%H:%M:%f000Z', 'now') FROM cron_marks;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def connect(db_path: str | os.PathLike[str], *, synchronous: str = "FULL") -> apsw.Connection:
    """Open (creating if needed) the database and migrate the task-state tables.

    Settings are applied to this connection only (`apsw.bestpractice.apply()` would edit a
    process-global hook list). `synchronous=FULL`: a commit lost on power loss would be a
    task lost or sent twice; NORMAL is there for measuring what that costs.
    """
    if synchronous not in SYNCHRONOUS:
        allowed = ", ".join(SYNCHRONOUS)
        raise ValueError(f"synchronous must be one of {allowed}, got {synchronous!r}")
    # Savepoint journals in memory, not in a temp file: each savepoint copies every page it
    # first touches there, which made an insert 4x dearer (8 -> 30 µs).
    return open_database(db_path, synchronous=synchronous, migrate=migrate, temp_in_memory=True)


def migrate(connection: apsw.Connection, path: str) -> None:
    """Apply the task-state migrations this database lacks, in order, and record the version."""
    migrate_component(connection, path, COMPONENT, MIGRATIONS)
