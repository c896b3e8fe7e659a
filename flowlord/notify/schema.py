"""The notification tables: the delivery queue and the cursors of what has been queued.

Like the task state, this component keeps its version in `schema_versions(component, version)`
and migrates only its own tables. Opening also migrates the cache and task-state tables it
reads (alerts, transitions, controls, workflow files), so it may open a file first.
"""

from __future__ import annotations

import os

import apsw

from cache import schema as cache_schema
from cache.schema import migrate_component, open_database
from flowlord.state import schema as state_schema

COMPONENT = "notify"

# `deliveries` is the durable queue: one row per POST to make, tried in `seq` order per URL.
# An alert summary carries the alert seqs it covers (`alert_first`..`alert_last`), marked
# notified once it is delivered. `delivery_cursors` holds, per source, the last row queued.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE deliveries (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      url TEXT NOT NULL,
      event TEXT NOT NULL,
      body TEXT NOT NULL,
      created TEXT NOT NULL,
      attempts INTEGER NOT NULL DEFAULT 0,
      next_try TEXT NOT NULL,
      delivered TEXT,
      gave_up TEXT,
      last_error TEXT NOT NULL DEFAULT '',
      alert_first INTEGER,
      alert_last INTEGER
    );
    CREATE INDEX idx_deliveries_pending ON deliveries (url, seq)
      WHERE delivered IS NULL AND gave_up IS NULL;
    CREATE TABLE delivery_cursors (
      source TEXT PRIMARY KEY,
      position INTEGER NOT NULL
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def connect(db_path: str | os.PathLike[str]) -> apsw.Connection:
    """Open (creating if needed) and migrate the database. `synchronous=FULL`: a lost commit
    would be a notification lost or sent twice."""
    return open_database(db_path, synchronous="FULL", migrate=_migrate_all, temp_in_memory=True)


def _migrate_all(connection: apsw.Connection, path: str) -> None:
    cache_schema.migrate(connection, path)
    state_schema.migrate(connection, path)
    migrate(connection, path)


def migrate(connection: apsw.Connection, path: str) -> None:
    """Apply the notification migrations this database lacks, in order, and record the version."""
    migrate_component(connection, path, COMPONENT, MIGRATIONS)
