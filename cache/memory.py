"""`MemoryCache`: the in-memory reference cache, behaving like the original Go cache.

It scans phases in Python for every lookup; `SQLiteCache` must agree with it on every answer.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from datetime import datetime

from cache.base import FileBackedCache
from cache.loader import Change, ClearError, Remove, SaveError, SaveWorkflow, StoredFile, utc_now
from cache.protocol import ALL_WORKFLOWS, parent_names, task_target
from cache.source import DEFAULT_MAX_BYTES, WorkflowSource
from workflow import Phase, PhaseRecord, Task, Workflow
from workflow.phase import not_found


class MemoryCache(FileBackedCache):
    """Workflows held in a dict keyed by file; nothing survives the process."""

    def __init__(
        self,
        workflow_path: str | os.PathLike[str],
        *,
        now: Callable[[], datetime] = utc_now,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self._store = MemoryStore()
        source = WorkflowSource(workflow_path, max_bytes=max_bytes)
        super().__init__(source, self._store, now=now)

    def search(self, task: str, job: str = "") -> tuple[str, Phase]:
        workflows = dict(self._store.workflows)  # a snapshot: the watch thread may write
        for key in sorted(workflows):
            for phase in workflows[key].phases:
                if phase.topic == task and (not job or phase.job == job):
                    return key, phase
        return "", Phase()

    def get(self, t: Task) -> PhaseRecord:
        key, job = task_target(t)
        if key == ALL_WORKFLOWS:
            _, found = self.search(t.type, job)
            return found if isinstance(found, PhaseRecord) else not_found()
        workflow = self._store.workflows.get(key)
        for phase in workflow.phases if workflow else ():
            if phase.topic == t.type and (not job or phase.job == job):
                return phase
        return not_found()

    def children(self, t: Task) -> list[Phase]:
        key, job = task_target(t)
        workflow = self._store.workflows.get(key)
        if not t.type or workflow is None:
            return []
        parents = parent_names(t, job)
        return [phase for phase in workflow.phases if phase.depends_on in parents]

    def close(self) -> None:
        self._stop_watching()
        self._store.files.clear()
        self._store.workflows.clear()


class MemoryStore:
    """The `FileStore` of `MemoryCache`: files and their parsed workflows in dicts."""

    def __init__(self) -> None:
        self.files: dict[str, StoredFile] = {}
        self.workflows: dict[str, Workflow] = {}

    def stored_files(self, keys: Collection[str] | None = None) -> dict[str, StoredFile]:
        if keys is None:
            return dict(self.files)
        return {key: self.files[key] for key in keys if key in self.files}

    def apply(self, changes: Sequence[Change]) -> dict[str, str]:
        for change in changes:
            match change:
                case SaveWorkflow(workflow=workflow, file_hash=file_hash):
                    self.files[change.key] = StoredFile(
                        file_hash=file_hash, error_hash="", error=""
                    )
                    self.workflows[change.key] = workflow
                case SaveError():
                    previous = self.files.get(change.key)
                    self.files[change.key] = StoredFile(
                        file_hash=previous.file_hash if previous else "",
                        error_hash=change.error_hash,
                        error=change.error,
                    )
                case ClearError():
                    self.files[change.key] = replace(
                        self.files[change.key], error_hash="", error=""
                    )
                case Remove():
                    self.files.pop(change.key, None)
                    self.workflows.pop(change.key, None)
        return {}
