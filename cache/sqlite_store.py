"""`SQLiteStore`: the `FileStore` that writes loaded files and phases to the cache database."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import apsw

from cache.loader import Change, ClearError, Remove, SaveError, SaveWorkflow, StoredFile
from cache.schema import transaction
from workflow import Workflow

_UPSERT_FILE = """
INSERT INTO workflow_files (file_path, file_hash, loaded_at, last_modified, error, error_hash)
VALUES (?, ?, ?, ?, '', '')
ON CONFLICT (file_path) DO UPDATE SET
  file_hash = excluded.file_hash, loaded_at = excluded.loaded_at,
  last_modified = excluded.last_modified, error = '', error_hash = ''
"""
_INSERT_PHASE = """
INSERT INTO workflow_phases
  (file_path, task, topic, job, depends_on, rule, template, retry, status, position)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
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
    """Writes a refresh in one transaction, each file in a savepoint of its own.

    A commit costs 250-350 µs on this class of machine, so one per file would make a cold load
    of 1000 files commit-bound; the savepoint keeps each file whole, and a file whose write
    fails is rolled back alone.
    """

    def __init__(self, connection: apsw.Connection) -> None:
        self._connection = connection

    def stored_files(self) -> dict[str, StoredFile]:
        rows = self._connection.execute(
            "SELECT file_path, file_hash, error_hash, error FROM workflow_files"
        )
        return {key: StoredFile(file_hash=h, error_hash=eh, error=e) for key, h, eh, e in rows}

    def apply(self, changes: Sequence[Change]) -> dict[str, str]:
        failed: dict[str, str] = {}
        if not changes:
            return failed
        with transaction(self._connection):
            for change in changes:
                try:
                    with self._connection:  # a savepoint: this file alone on failure
                        self._write(change)
                except apsw.Error as err:
                    failed[change.key] = f"{change.key}: cannot store: {err}"
        return failed

    def _write(self, change: Change) -> None:
        execute = self._connection.execute
        match change:
            case SaveWorkflow(workflow=workflow, file_hash=file_hash):
                key = workflow.path
                execute(
                    _UPSERT_FILE,
                    (key, file_hash, timestamp(change.loaded_at), timestamp(change.modified)),
                )
                execute("DELETE FROM workflow_phases WHERE file_path = ?", (key,))
                self._connection.executemany(_INSERT_PHASE, _phase_rows(workflow))
            case SaveError():
                execute(
                    _UPSERT_ERROR,
                    (change.key, timestamp(change.at), timestamp(change.modified), change.error,
                     change.error_hash),
                )  # fmt: skip
            case ClearError():
                execute(
                    "UPDATE workflow_files SET error = '', error_hash = '' WHERE file_path = ?",
                    (change.key,),
                )
            case Remove():
                execute("DELETE FROM workflow_files WHERE file_path = ?", (change.key,))
