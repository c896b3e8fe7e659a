"""The refresh algorithm, shared by every cache: stat, hash only if needed, parse only if changed.

A `FileStore` is where a cache keeps files and phases; the `Loader` decides what to write there.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from cache.source import Signature, UnreadableFile, WorkflowSource
from workflow import Workflow, WorkflowError, parse_workflow

RACY_WINDOW_NS = 2_000_000_000


@dataclass(frozen=True, slots=True)
class StoredFile:
    """What a store remembers of a file to decide whether new bytes need parsing."""

    file_hash: str
    error_hash: str
    error: str


class FileStore(Protocol):
    """Storage of loaded files; each write is applied atomically (one transaction per file)."""

    def stored_files(self) -> dict[str, StoredFile]: ...

    def save_workflow(
        self, workflow: Workflow, *, file_hash: str, modified: datetime | None, loaded_at: datetime
    ) -> None: ...

    def save_error(
        self, key: str, error: str, *, error_hash: str, modified: datetime | None, at: datetime
    ) -> None: ...

    def clear_error(self, key: str) -> None: ...

    def remove(self, key: str) -> None: ...


@dataclass(slots=True)
class RefreshStats:
    """Counts of one refresh: how much work the stat and hash short-cuts saved."""

    files: int = 0
    hashed: int = 0
    parsed: int = 0
    failed: int = 0


@dataclass(slots=True)
class RefreshOutcome:
    """Keys changed (removed ones prefixed `-`) and keys that failed, with why."""

    changed: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    stats: RefreshStats = field(default_factory=RefreshStats)


class Loader:
    """Brings a `FileStore` in line with a `WorkflowSource`."""

    def __init__(
        self, source: WorkflowSource, store: FileStore, *, now: Callable[[], datetime]
    ) -> None:
        self._source = source
        self._store = store
        self._now = now
        self._clean: dict[str, Signature] = {}

    def refresh(self) -> RefreshOutcome:
        """A full scan: load new and changed files, remove deleted ones."""
        scan_started_ns = time.time_ns()
        present = self._source.scan()
        stored = self._store.stored_files()
        outcome = RefreshOutcome()
        for key in sorted(present):
            self._load(key, present[key], stored.get(key), outcome, scan_started_ns)
        self._remove((key for key in stored if key not in present), outcome)
        return outcome

    def refresh_keys(self, keys: Iterable[str]) -> RefreshOutcome:
        """Refresh only `keys` (named by a watch event): always hashed, removed if gone."""
        scan_started_ns = time.time_ns()
        stored = self._store.stored_files()
        outcome = RefreshOutcome()
        gone = []
        for key in sorted(set(keys)):
            signature = self._source.signature(key)
            if isinstance(signature, UnreadableFile) and not self._source.file_path(key).exists():
                gone.append(key)
                continue
            self._clean.pop(key, None)
            self._load(key, signature, stored.get(key), outcome, scan_started_ns)
        self._remove((key for key in gone if key in stored), outcome)
        return outcome

    def _load(
        self,
        key: str,
        signature: Signature | UnreadableFile,
        stored: StoredFile | None,
        outcome: RefreshOutcome,
        scan_started_ns: int,
    ) -> None:
        outcome.stats.files += 1
        if isinstance(signature, UnreadableFile):
            self._clean.pop(key, None)
            self._fail(key, str(signature), "", stored, outcome, None)
            return
        if stored is not None and self._clean.get(key) == signature:
            return
        modified = datetime.fromtimestamp(signature.mtime_ns / 1e9, UTC)
        try:
            data = self._source.read(key)
        except UnreadableFile as err:
            self._fail(key, str(err), "", stored, outcome, modified)
            return
        outcome.stats.hashed += 1
        digest = hashlib.sha256(data).hexdigest()
        self._apply(key, data, digest, stored, outcome, modified)
        # Racy-git rule: a file written within the window may change again without its
        # signature changing (coarse mtimes), so only older files may skip hashing next time.
        if signature.mtime_ns < scan_started_ns - RACY_WINDOW_NS:
            self._clean[key] = signature

    def _apply(
        self,
        key: str,
        data: bytes,
        digest: str,
        stored: StoredFile | None,
        outcome: RefreshOutcome,
        modified: datetime,
    ) -> None:
        if stored is not None and digest == stored.file_hash:
            if stored.error:
                self._store.clear_error(key)
                outcome.changed.append(key)
            return
        if stored is not None and digest == stored.error_hash:
            return
        outcome.stats.parsed += 1
        try:
            workflow = parse_workflow(data, key)
        except WorkflowError as err:
            self._fail(key, str(err), digest, stored, outcome, modified)
            return
        self._store.save_workflow(
            workflow, file_hash=digest, modified=modified, loaded_at=self._now()
        )
        outcome.changed.append(key)

    def _fail(
        self,
        key: str,
        error: str,
        error_hash: str,
        stored: StoredFile | None,
        outcome: RefreshOutcome,
        modified: datetime | None,
    ) -> None:
        """Record why `key` failed, unless this very failure is already recorded."""
        if stored is not None and stored.error == error and stored.error_hash == error_hash:
            return
        outcome.stats.failed += 1
        self._store.save_error(key, error, error_hash=error_hash, modified=modified, at=self._now())
        outcome.errors[key] = error

    def _remove(self, keys: Iterable[str], outcome: RefreshOutcome) -> None:
        for key in sorted(keys):
            self._store.remove(key)
            self._clean.pop(key, None)
            outcome.changed.append(f"-{key}")
