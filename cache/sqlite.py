"""`SQLiteCache`: workflows in an apsw database that survives restarts; every lookup is indexed."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from cache.base import FileBackedCache
from cache.loader import utc_now
from cache.protocol import ALL_WORKFLOWS, parent_names, task_target
from cache.schema import connect
from cache.source import DEFAULT_MAX_BYTES, WorkflowSource
from cache.sqlite_store import SQLiteStore
from workflow import Phase, PhaseRecord, Task
from workflow.phase import not_found
from workflow.validate import status_has_error, status_has_warning

_COLUMNS = "task, rule, depends_on, retry, template, file_path, status"
_SEARCH = (
    f"SELECT {_COLUMNS} FROM workflow_phases WHERE topic = ? ORDER BY file_path, position LIMIT 1"
)
_SEARCH_JOB = (
    f"SELECT {_COLUMNS} FROM workflow_phases WHERE topic = ? AND job = ? "
    "ORDER BY file_path, position LIMIT 1"
)
# Hot lookups return few rows and order them in Python: an ORDER BY costs SQLite ~9 µs here
# even when the index already yields that order. `topic:job` is unique in a file (the key).
_GET = f"SELECT {_COLUMNS}, position FROM workflow_phases WHERE topic = ? AND file_path = ?"
_GET_JOB = f"SELECT {_COLUMNS} FROM workflow_phases WHERE file_path = ? AND task = ?"
_CHILDREN = (
    f"SELECT {_COLUMNS}, position FROM workflow_phases WHERE file_path = ? AND depends_on = ?"
)
_CHILDREN_JOB = (
    f"SELECT {_COLUMNS}, position FROM workflow_phases WHERE file_path = ? AND depends_on IN (?, ?)"
)


STATUS_KINDS = {"error": status_has_error, "warning": status_has_warning}
"""Status filters by kind of finding; `ok` (no finding) is a plain query."""

LOOKUP_QUERIES = {
    "search": _SEARCH,
    "search_job": _SEARCH_JOB,
    "get": _GET,
    "get_job": _GET_JOB,
    "children": _CHILDREN,
    "children_job": _CHILDREN_JOB,
}
"""Every lookup on the hot path; tests check that each one's query plan uses an index."""


def _record(row: tuple) -> PhaseRecord:
    task, rule, depends_on, retry, template, file_path, status = row[:7]
    return PhaseRecord(
        task=task, rule=rule, depends_on=depends_on, retry=retry, template=template,
        file_path=file_path, status=status,
    )  # fmt: skip


def _position(row: tuple) -> int:
    return row[7]


@dataclass(frozen=True, slots=True)
class WorkflowFile:
    """One row of `workflow_files`: a file's last good hash and why its current bytes failed."""

    file_path: str
    file_hash: str
    loaded_at: datetime
    last_modified: datetime | None
    error: str


@dataclass(frozen=True, slots=True)
class FileVersion:
    """One stored version of a file: the hash of its bytes, when they loaded, their size."""

    file_hash: str
    loaded_at: datetime
    size: int


def _workflow_file(row: tuple) -> WorkflowFile:
    key, file_hash, loaded, modified, error = row
    return WorkflowFile(
        file_path=key, file_hash=file_hash, loaded_at=datetime.fromisoformat(loaded),
        last_modified=datetime.fromisoformat(modified) if modified else None, error=error,
    )  # fmt: skip


class SQLiteCache(FileBackedCache):
    """The `Cache` backed by SQLite; the database is the cache, so a restart re-parses nothing
    that did not change while flowlord was down."""

    def __init__(
        self,
        workflow_path: str | os.PathLike[str],
        db_path: str | os.PathLike[str] = ":memory:",
        *,
        now: Callable[[], datetime] = utc_now,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        source = WorkflowSource(workflow_path, max_bytes=max_bytes)
        self._connection = connect(db_path)
        # One connection, shared by threads: the lock keeps a reader out of a write transaction
        # in progress, so it sees each file's old phases or its new ones, never a mix.
        self._lock = threading.RLock()
        super().__init__(source, SQLiteStore(self._connection, self._lock), now=now)

    def search(self, task: str, job: str = "") -> tuple[str, Phase]:
        rows = self._rows(_SEARCH_JOB, (task, job)) if job else self._rows(_SEARCH, (task,))
        return (rows[0][5], _record(rows[0])) if rows else ("", Phase())

    def get(self, t: Task) -> PhaseRecord:
        key, job = task_target(t)
        if key == ALL_WORKFLOWS:
            _, found = self.search(t.type, job)
            return found if isinstance(found, PhaseRecord) else not_found()
        if not key:
            return not_found()
        if job:
            row = next(iter(self._rows(_GET_JOB, (key, f"{t.type}:{job}"))), None)
        else:
            row = min(self._rows(_GET, (t.type, key)), key=_position, default=None)
        return _record(row) if row else not_found()

    def children(self, t: Task) -> list[Phase]:
        key, job = task_target(t)
        if not t.type or not key or key == ALL_WORKFLOWS:
            return []
        parents = parent_names(t, job)
        query = _CHILDREN_JOB if job else _CHILDREN
        rows = self._rows(query, (key, *parents))
        return [_record(row) for row in sorted(rows, key=_position)]

    def close(self) -> None:
        self._stop_watching()
        with self._lock:
            self._connection.execute("PRAGMA optimize")
            self._connection.close()

    def workflow_files(self) -> list[WorkflowFile]:
        """Every known file, loaded or failing, by key."""
        rows = self._rows(
            "SELECT file_path, file_hash, loaded_at, last_modified, error "
            "FROM workflow_files ORDER BY file_path"
        )
        return [_workflow_file(row) for row in rows]

    def workflow_file(self, file_path: str) -> WorkflowFile | None:
        """One file's row, or None for a file the cache does not know (or no longer does)."""
        rows = self._rows(
            "SELECT file_path, file_hash, loaded_at, last_modified, error "
            "FROM workflow_files WHERE file_path = ?",
            (file_path,),
        )
        return _workflow_file(rows[0]) if rows else None

    def versions(self, file_path: str) -> list[FileVersion]:
        """The stored versions of a file, newest first; they outlive the file's deletion."""
        rows = self._rows(
            "SELECT file_hash, loaded_at, length(content) FROM workflow_versions "
            "WHERE file_path = ? ORDER BY seq DESC",
            (file_path,),
        )
        return [
            FileVersion(file_hash=file_hash, loaded_at=datetime.fromisoformat(loaded), size=size)
            for file_hash, loaded, size in rows
        ]

    def version(self, file_path: str, file_hash: str) -> bytes | None:
        """The bytes of one stored version of a file, or None if none has that hash."""
        rows = self._rows(
            "SELECT content FROM workflow_versions WHERE file_path = ? AND file_hash = ?",
            (file_path, file_hash),
        )
        return bytes(rows[0][0]) if rows else None

    def phases(
        self,
        file_path: str | None = None,
        *,
        topic: str | None = None,
        depends_on: str | None = None,
        status: str | None = None,
    ) -> list[PhaseRecord]:
        """Phases by file and file order, filtered.

        `status` is `error` (any error finding), `warning` (any warning), `ok` (no finding),
        or else a substring of the status. A filter other than `ok` reads only phases with a
        finding (`status > ''` on its index).
        """
        clauses, params = [], []
        for column, value in (
            ("file_path", file_path),
            ("topic", topic),
            ("depends_on", depends_on),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        kind = STATUS_KINDS.get(status or "")
        if status == "ok":
            clauses.append("status = ''")
        elif status:
            clauses.append("status > ''" if kind else "status > '' AND instr(status, ?) > 0")
            params += [] if kind else [status]
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        query = f"SELECT {_COLUMNS} FROM workflow_phases {where} ORDER BY file_path, position"
        records = [_record(row) for row in self._rows(query, params)]
        return [r for r in records if kind(r.status)] if kind else records

    def phases_to_schedule(self) -> list[PhaseRecord]:
        """The phases a scheduler must know at start, by file and file order: those with a
        `cron=`, `files=` or `require=` rule, or a finding. Filtered in SQL, so a start-up
        over 100,000 phases builds records only for the few that fire on their own."""
        query = (
            f"SELECT {_COLUMNS} FROM workflow_phases WHERE instr(rule, 'cron=') "
            "OR instr(rule, 'files=') OR instr(rule, 'require=') OR instr(rule, 'ttl=') "
            "OR status > '' "
            "ORDER BY file_path, position"
        )
        return [_record(row) for row in self._rows(query)]

    def parents(self, file_path: str, task: str) -> list[PhaseRecord]:
        """The phases `task` depends on in its file: one for `topic:job`, all of a `topic`."""
        with self._lock:
            found = self._rows(
                "SELECT depends_on FROM workflow_phases WHERE file_path = ? AND task = ?",
                (file_path, task),
            )
            depends_on = found[0][0] if found else ""
            if not depends_on:
                return []
            if ":" in depends_on:
                query = f"SELECT {_COLUMNS} FROM workflow_phases WHERE file_path = ? AND task = ?"
                return [_record(r) for r in self._rows(query, (file_path, depends_on))]
            query = (
                f"SELECT {_COLUMNS} FROM workflow_phases WHERE topic = ? AND file_path = ? "
                "ORDER BY position"
            )
            return [_record(r) for r in self._rows(query, (depends_on, file_path))]

    def _rows(self, query: str, params: Sequence[object] = ()) -> list[tuple]:
        """Every read goes through here, under the lock that writes hold for a transaction."""
        with self._lock:
            return self._connection.execute(query, params).fetchall()
