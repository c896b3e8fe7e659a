"""`SQLiteStore`: the `FileStore` that writes loaded files, their phases and their versions
to the cache database."""

from __future__ import annotations

import threading
from collections.abc import Collection, Sequence
from datetime import datetime

import apsw

from cache.loader import Change, ClearError, Remove, SaveError, SaveWorkflow, StoredFile
from cache.schema import transaction
from workflow import Workflow
from workflow.validate import VALIDATION_VERSION

_UPSERT_FILE = f"""
INSERT INTO workflow_files
  (file_path, file_hash, loaded_at, last_modified, error, error_hash, validation)
VALUES (?, ?, ?, ?, '', '', {VALIDATION_VERSION})
ON CONFLICT (file_path) DO UPDATE SET
  file_hash = excluded.file_hash, loaded_at = excluded.loaded_at,
  last_modified = excluded.last_modified, error = '', error_hash = '',
  validation = excluded.validation
"""
_INSERT_PHASE = """
INSERT INTO workflow_phases
  (file_path, task, topic, job, depends_on, rule, template, retry, status, position)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
KEPT_VERSIONS = 50
"""Versions of each file kept in `workflow_versions`; older ones are dropped as new ones load."""

# REPLACE, not an upsert: a version loaded again gets a new `seq`, so it is the newest.
_INSERT_VERSION = """
INSERT OR REPLACE INTO workflow_versions (file_path, file_hash, loaded_at, content)
VALUES (?, ?, ?, ?)
"""
_PRUNE_VERSIONS = f"""
DELETE FROM workflow_versions WHERE seq IN (
  SELECT seq FROM workflow_versions WHERE file_path = ?
  ORDER BY seq DESC LIMIT -1 OFFSET {KEPT_VERSIONS}
)
"""
_UPSERT_ERROR = """
INSERT INTO workflow_files (file_path, file_hash, loaded_at, last_modified, error, error_hash)
VALUES (?, '', ?, ?, ?, ?)
ON CONFLICT (file_path) DO UPDATE SET
  last_modified = excluded.last_modified, error = excluded.error, error_hash = excluded.error_hash
"""


def _phase_rows(workflow: Workflow) -> list[tuple]:
    key = workflow.path
    return [
        (key, p.task, p.topic, p.job, p.depends_on, p.rule, p.template, p.retry, p.status, i)
        for i, p in enumerate(workflow.phases)
    ]


def timestamp(when: datetime | None) -> str | None:
    """Times are stored as RFC 3339 text, which sorts and reads well."""
    return when.isoformat().replace("+00:00", "Z") if when else None


class SQLiteStore:
    """Writes a refresh in one transaction, so a reader sees each file whole, old or new.

    A commit costs 250-350 µs on this class of machine and a statement per file adds up, so
    a batch is written with a few `executemany` calls; only if that fails (in any way: a
    value SQLite cannot hold raises OverflowError, not an apsw error) is it retried file by
    file, each in a savepoint, so that one file that cannot be stored fails alone.
    """

    def __init__(self, connection: apsw.Connection, lock: threading.RLock) -> None:
        self._connection = connection
        self._lock = lock

    def stored_files(self, keys: Collection[str] | None = None) -> dict[str, StoredFile]:
        query = "SELECT file_path, file_hash, error_hash, error, validation FROM workflow_files"
        with self._lock:
            return self._stored_files(query, keys)

    def _stored_files(self, query: str, keys: Collection[str] | None) -> dict[str, StoredFile]:
        if keys is None:
            rows = self._connection.execute(query).fetchall()
        else:
            rows = [
                row
                for key in keys
                for row in self._connection.execute(f"{query} WHERE file_path = ?", (key,))
            ]
        return {
            key: StoredFile(file_hash=h, error_hash=eh, error=e, validation=v)
            for key, h, eh, e, v in rows
        }

    def apply(self, changes: Sequence[Change]) -> dict[str, str]:
        if not changes:
            return {}
        with self._lock:
            try:
                with transaction(self._connection):
                    self._write_batch(changes)
            except Exception:
                return self._apply_one_by_one(changes)
        return {}

    def _apply_one_by_one(self, changes: Sequence[Change]) -> dict[str, str]:
        failed: dict[str, str] = {}
        with transaction(self._connection):
            for change in changes:
                try:
                    with self._connection:  # a savepoint: this file alone on failure
                        self._write_batch([change])
                except Exception as err:
                    failed[change.key] = f"{change.key}: cannot store: {err}"
        return failed

    def _write_batch(self, changes: Sequence[Change]) -> None:
        saves = [c for c in changes if isinstance(c, SaveWorkflow)]
        many = self._connection.executemany
        many(
            "DELETE FROM workflow_files WHERE file_path = ?",
            [(c.key,) for c in changes if isinstance(c, Remove)],
        )
        many(
            _UPSERT_FILE,
            [(c.key, c.file_hash, timestamp(c.loaded_at), timestamp(c.modified)) for c in saves],
        )
        many("DELETE FROM workflow_phases WHERE file_path = ?", [(c.key,) for c in saves])
        many(_INSERT_PHASE, [row for c in saves for row in _phase_rows(c.workflow)])
        many(
            _INSERT_VERSION,
            [(c.key, c.file_hash, timestamp(c.loaded_at), c.content) for c in saves],
        )
        many(_PRUNE_VERSIONS, [(c.key,) for c in saves])
        many(
            _UPSERT_ERROR,
            [
                (c.key, timestamp(c.at), timestamp(c.modified), c.error, c.error_hash)
                for c in changes
                if isinstance(c, SaveError)
            ],
        )
        many(
            "UPDATE workflow_files SET error = '', error_hash = '' WHERE file_path = ?",
            [(c.key,) for c in changes if isinstance(c, ClearError)],
        )
