"""The SQLite database of the cache: connection settings and versioned migrations."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import apsw

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE workflow_files (
      file_path TEXT PRIMARY KEY,
      file_hash TEXT NOT NULL,
      loaded_at TIMESTAMP NOT NULL,
      last_modified TIMESTAMP,
      error TEXT NOT NULL DEFAULT '',
      error_hash TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE workflow_phases (
      file_path TEXT NOT NULL REFERENCES workflow_files(file_path) ON DELETE CASCADE,
      task TEXT NOT NULL,
      topic TEXT NOT NULL,
      job TEXT NOT NULL DEFAULT '',
      depends_on TEXT NOT NULL DEFAULT '',
      rule TEXT NOT NULL DEFAULT '',
      template TEXT NOT NULL DEFAULT '',
      retry INTEGER NOT NULL DEFAULT 0,
      status TEXT NOT NULL DEFAULT '',
      position INTEGER NOT NULL,
      PRIMARY KEY (file_path, task)
    );
    CREATE INDEX idx_phases_topic_job ON workflow_phases (topic, job, file_path, position);
    CREATE INDEX idx_phases_topic_file ON workflow_phases (topic, file_path, position);
    CREATE INDEX idx_phases_depends_on ON workflow_phases (file_path, depends_on, position);
    CREATE INDEX idx_phases_status ON workflow_phases (status);
    """,
    # The validator version behind each file's stored statuses: a newer flowlord that checks
    # more parses every file once again, so no phase keeps a status an older one computed.
    """
    ALTER TABLE workflow_files ADD COLUMN validation INTEGER NOT NULL DEFAULT 0;
    """,
    # Every version a file loaded, so its history can be listed, diffed and restored. `seq`
    # orders it: the highest is the newest, and a version loaded again replaces its old row
    # (one row per distinct content), so it counts as new. No foreign key: the history of a
    # deleted file stays, so the file can be restored.
    # Resetting `validation` makes the next refresh parse every file once more, even one
    # whose bytes did not change, so that its current bytes enter the history; without it a
    # database from before this table would have no version of its files until they change.
    """
    CREATE TABLE workflow_versions (
      seq INTEGER PRIMARY KEY,
      file_path TEXT NOT NULL,
      file_hash TEXT NOT NULL,
      loaded_at TIMESTAMP NOT NULL,
      content BLOB NOT NULL,
      UNIQUE (file_path, file_hash)
    );
    CREATE INDEX idx_versions_newest ON workflow_versions (file_path, seq);
    UPDATE workflow_files SET validation = 0;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
BUSY_TIMEOUT_MS = 5000


class SchemaError(RuntimeError):
    """The database cannot be used: not SQLite, or written by a newer flowlord."""


def connect(db_path: str | os.PathLike[str]) -> apsw.Connection:
    """Open (creating if needed) and migrate the cache database.

    `synchronous=NORMAL` is enough for a cache the files can rebuild.
    """
    return open_database(db_path, synchronous="NORMAL", migrate=migrate)


def open_database(
    db_path: str | os.PathLike[str],
    *,
    synchronous: str,
    migrate: Callable[[apsw.Connection, str], None],
    temp_in_memory: bool = False,
) -> apsw.Connection:
    """A connection to a flowlord database file with our settings, migrated by `migrate`.

    The cache and the task state each open their own, with these settings applied to that
    connection only (`apsw.bestpractice.apply()` would edit a process-global hook list).
    Raises `IsADirectoryError`, `FileNotFoundError`, or `SchemaError` for a file that is not
    SQLite or was written by a newer flowlord.
    """
    path = os.fspath(db_path)
    if path != ":memory:" and os.path.isdir(path):
        raise IsADirectoryError(f"database path {path!r} is a directory, expected a file")
    try:
        connection = apsw.Connection(path)
    except apsw.CantOpenError:
        raise FileNotFoundError(
            f"cannot open database {path!r}: no such folder or no access"
        ) from None
    connection.set_busy_timeout(BUSY_TIMEOUT_MS)
    connection.config(apsw.SQLITE_DBCONFIG_DQS_DML, 0)
    connection.config(apsw.SQLITE_DBCONFIG_DQS_DDL, 0)
    try:
        connection.execute("PRAGMA foreign_keys = ON")
        if path != ":memory:":
            connection.execute("PRAGMA journal_mode = WAL")
        connection.execute(f"PRAGMA synchronous = {synchronous}")
        if temp_in_memory:
            connection.execute("PRAGMA temp_store = MEMORY")
        migrate(connection, path)
    except (apsw.NotADBError, apsw.CorruptError):
        connection.close()
        raise SchemaError(f"database {path!r} is not a flowlord SQLite database") from None
    except BaseException:
        connection.close()
        raise
    return connection


def migrate(connection: apsw.Connection, path: str) -> None:
    """Apply the migrations this database lacks, in order, each with its version bump."""
    with transaction(connection):
        version = connection.execute("PRAGMA user_version").fetchall()[0][0]
        if version > SCHEMA_VERSION:
            raise SchemaError(
                f"database {path!r} has schema version {version}; "
                f"this flowlord knows up to {SCHEMA_VERSION}"
            )
        for number in range(version, SCHEMA_VERSION):
            connection.execute(MIGRATIONS[number])
            connection.execute(f"PRAGMA user_version = {number + 1}")


@contextmanager
def transaction(connection: apsw.Connection) -> Iterator[None]:
    """`BEGIN IMMEDIATE`: take the write lock up front, so a read-then-write never fails busy."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def migrate_component(
    connection: apsw.Connection, path: str, component: str, migrations: Sequence[str]
) -> None:
    """Apply the migrations of one component (task state, notifications) this database lacks,
    in order, in one transaction, and record its version in `schema_versions`. The cache owns
    `PRAGMA user_version`; every other component keeps its own row here, so each migrates
    only its own tables and any of them may create the file first."""
    latest = len(migrations)
    with transaction(connection):
        connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_versions "
            "(component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
        )
        rows = connection.execute(
            "SELECT version FROM schema_versions WHERE component = ?", (component,)
        ).fetchall()
        version = rows[0][0] if rows else 0
        if version > latest:
            raise SchemaError(
                f"database {path!r}: table schema_versions gives component {component!r} "
                f"version {version}; this flowlord knows up to {latest}"
            )
        for number in range(version, latest):
            connection.execute(migrations[number])
        if version < latest:
            connection.execute(
                "INSERT INTO schema_versions (component, version) VALUES (?, ?) "
                "ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                (component, latest),
            )
