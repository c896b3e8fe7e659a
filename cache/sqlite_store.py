"""`SQLiteStore`: the `FileStore` that writes loaded files and phases to the cache database."""

from __future__ import annotations

from datetime import datetime

import apsw

from cache.loader import StoredFile
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


def timestamp(when: datetime | None) -> str | None:
    """Times are stored as RFC 3339 text, which sorts and reads well."""
    return when.isoformat().replace("+00:00", "Z") if when else None


class SQLiteStore:
    """Each write is one transaction: a reader sees a file's old phases or its new ones."""

    def __init__(self, connection: apsw.Connection) -> None:
        self._connection = connection

    def stored_files(self) -> dict[str, StoredFile]:
        rows = self._connection.execute(
            "SELECT file_path, file_hash, error_hash, error FROM workflow_files"
        )
        return {key: StoredFile(file_hash=h, error_hash=eh, error=e) for key, h, eh, e in rows}

    def save_workflow(
        self, workflow: Workflow, *, file_hash: str, modified: datetime | None, loaded_at: datetime
    ) -> None:
        key = workflow.path
        rows = [
            (key, p.task, p.topic, p.job, p.depends_on, p.rule, p.template, p.retry, p.status, i)
            for i, p in enumerate(workflow.phases)
        ]
        with transaction(self._connection):
            self._connection.execute(
                _UPSERT_FILE, (key, file_hash, timestamp(loaded_at), timestamp(modified))
            )
            self._connection.execute("DELETE FROM workflow_phases WHERE file_path = ?", (key,))
            self._connection.executemany(_INSERT_PHASE, rows)

    def save_error(
        self, key: str, error: str, *, error_hash: str, modified: datetime | None, at: datetime
    ) -> None:
        with transaction(self._connection):
            self._connection.execute(
                _UPSERT_ERROR, (key, timestamp(at), timestamp(modified), error, error_hash)
            )

    def clear_error(self, key: str) -> None:
        with transaction(self._connection):
            self._connection.execute(
                "UPDATE workflow_files SET error = '', error_hash = '' WHERE file_path = ?", (key,)
            )

    def remove(self, key: str) -> None:
        with transaction(self._connection):
            self._connection.execute("DELETE FROM workflow_files WHERE file_path = ?", (key,))
