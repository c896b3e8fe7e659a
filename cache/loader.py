"""The refresh algorithm, shared by every cache: stat, hash only if needed, parse only if changed.

A `FileStore` is where a cache keeps files and phases; the `Loader` decides what to write there.
All files are read and parsed first, then the writes of one refresh are applied together.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from cache.errors import RefreshError
from cache.source import Listing, Signature, UnreadableFile, WorkflowSource
from workflow import Workflow, WorkflowError, parse_workflow
from workflow.validate import VALIDATION_VERSION

log = logging.getLogger(__name__)

RACY_WINDOW_NS = 2_000_000_000
BATCH_FILES = 256
"""Changes written per transaction: a cold refresh of 10,000 files holds at most this many
parsed files in memory, and a reader waits at most one batch's write."""


def utc_now() -> datetime:
    """The default clock of the caches; tests pass their own `now`."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class StoredFile:
    """What a store remembers of a file to decide whether new bytes need parsing; `validation`
    is the validator version that computed its statuses (an older one means: parse again)."""

    file_hash: str
    error_hash: str
    error: str
    validation: int = VALIDATION_VERSION


@dataclass(frozen=True, slots=True)
class SaveWorkflow:
    """Replace a file's phases with those of its new good bytes, clearing any error; `content`
    is those bytes, kept as a version of the file by the same write."""

    workflow: Workflow
    file_hash: str
    modified: datetime | None
    loaded_at: datetime
    content: bytes

    @property
    def key(self) -> str:
        return self.workflow.path


@dataclass(frozen=True, slots=True)
class SaveError:
    """Record why a file's current bytes failed; its last good phases stay."""

    key: str
    error: str
    error_hash: str
    modified: datetime | None
    at: datetime


@dataclass(frozen=True, slots=True)
class ClearError:
    """The file is back to its last good bytes."""

    key: str


@dataclass(frozen=True, slots=True)
class Remove:
    """The file is gone: drop it and its phases."""

    key: str


Change = SaveWorkflow | SaveError | ClearError | Remove


class FileStore(Protocol):
    """Storage of loaded files. `apply` writes each change whole: a reader sees a file's old
    phases or its new ones, never a mix."""

    def stored_files(self, keys: Collection[str] | None = None) -> dict[str, StoredFile]:
        """What is stored of `keys` (of every file when None)."""
        ...

    def apply(self, changes: Sequence[Change]) -> dict[str, str]:
        """Apply the changes; returns keys whose change could not be stored, with why."""
        ...


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

    def result(self) -> list[str]:
        """The `Cache.refresh` answer: changed keys, or `RefreshError` if any file failed."""
        if self.errors:
            raise RefreshError(self.errors, self.changed)
        return self.changed


class Loader:
    """Brings a `FileStore` in line with a `WorkflowSource`."""

    def __init__(
        self,
        source: WorkflowSource,
        store: FileStore,
        *,
        now: Callable[[], datetime],
        parse: Callable[[bytes, str], Workflow] = parse_workflow,
    ) -> None:
        self._source = source
        self._store = store
        self._now = now
        self._parse = parse
        self._clean: dict[str, Signature] = {}

    def refresh(self) -> RefreshOutcome:
        """A full scan: load new and changed files, remove deleted ones.

        A file is removed only when a folder that was listed lacks it: the files under a
        folder that cannot be listed keep their phases, and the listing error is reported.
        Writes go in batches of `BATCH_FILES`, so memory stays bounded however many change.
        """
        scan_started_ns = time.time_ns()
        listing = self._source.scan()
        stored = self._store.stored_files()
        outcome = RefreshOutcome()
        outcome.errors.update({prefix or ".": why for prefix, why in listing.unlisted.items()})
        changes: list[Change] = []
        for key in sorted(listing.files):
            signature = listing.files[key]
            change = self._check(key, signature, stored.get(key), outcome.stats, scan_started_ns)
            if change is not None:
                changes.append(change)
            if len(changes) >= BATCH_FILES:
                self._apply(changes, outcome)
                changes = []
        changes += [Remove(key) for key in sorted(stored) if _gone(key, listing)]
        self._apply(changes, outcome)
        return outcome

    def refresh_keys(self, keys: Iterable[str]) -> RefreshOutcome:
        """Refresh only `keys` (named by a watch event): always hashed, removed if gone.

        Keys that cannot name a workflow file of this source (`../x.toml`) are ignored.
        """
        scan_started_ns = time.time_ns()
        wanted = sorted({key for key in keys if self._source.owns(key)})
        stored = self._store.stored_files(wanted)
        outcome = RefreshOutcome()
        changes: list[Change] = []
        removals: list[Change] = []
        for key in wanted:
            signature = self._source.signature(key)
            absent = self._source.absent(key) if isinstance(signature, UnreadableFile) else False
            if isinstance(absent, str):
                outcome.errors[key] = f"{absent} (last good phases of {key} kept)"
                continue
            if absent:
                if key in stored:
                    removals.append(Remove(key))
                continue
            self._clean.pop(key, None)
            change = self._check(key, signature, stored.get(key), outcome.stats, scan_started_ns)
            if change is not None:
                changes.append(change)
        self._apply(changes + removals, outcome)
        return outcome

    def _apply(self, changes: list[Change], outcome: RefreshOutcome) -> None:
        """Write a batch of changes and record what they did in `outcome`."""
        failed = self._store.apply(changes) if changes else {}
        for change in changes:
            if change.key in failed:
                self._clean.pop(change.key, None)
                outcome.errors[change.key] = failed[change.key]
            elif isinstance(change, SaveError):
                outcome.errors[change.key] = change.error
            elif isinstance(change, Remove):
                self._clean.pop(change.key, None)
                outcome.changed.append(f"-{change.key}")
            else:
                outcome.changed.append(change.key)
        outcome.stats.failed = len(outcome.errors)

    def _check(
        self,
        key: str,
        signature: Signature | UnreadableFile,
        stored: StoredFile | None,
        stats: RefreshStats,
        scan_started_ns: int,
    ) -> Change | None:
        """The change `key` needs, if any, reading and parsing only what may have changed."""
        stats.files += 1
        if isinstance(signature, UnreadableFile):
            self._clean.pop(key, None)
            return self._failure(key, str(signature), "", stored, None)
        if stored is not None and self._clean.get(key) == signature:
            return None
        modified = datetime.fromtimestamp(signature.mtime_ns / 1e9, UTC)
        try:
            data = self._source.read(key)
        except UnreadableFile as err:
            return self._failure(key, str(err), "", stored, modified)
        stats.hashed += 1
        digest = hashlib.sha256(data).hexdigest()
        # Racy-git rule: a file written within the window may change again without its
        # signature changing (coarse mtimes), so only older files may skip hashing next time.
        if signature.mtime_ns < scan_started_ns - RACY_WINDOW_NS:
            self._clean[key] = signature
        if stored is not None:
            current = stored.validation == VALIDATION_VERSION
            if digest == stored.file_hash and current:
                return ClearError(key) if stored.error else None
            if digest == stored.error_hash:
                return None
        stats.parsed += 1
        try:
            workflow = self._parse(data, key)
        except WorkflowError as err:
            return self._failure(key, str(err), digest, stored, modified)
        except Exception as err:  # a parser bug must fail this file alone, never the refresh
            log.exception("parsing %s failed unexpectedly", key)
            problem = f"{key}: cannot load: internal error: {type(err).__name__}: {err}"
            return self._failure(key, problem, digest, stored, modified)
        return SaveWorkflow(workflow, digest, modified, self._now(), data)

    def _failure(
        self,
        key: str,
        error: str,
        error_hash: str,
        stored: StoredFile | None,
        modified: datetime | None,
    ) -> SaveError | None:
        """Record why `key` failed, unless this very failure is already recorded."""
        if stored is not None and stored.error == error and stored.error_hash == error_hash:
            return None
        return SaveError(key, error, error_hash, modified, self._now())


def _gone(key: str, listing: Listing) -> bool:
    """A stored file is gone when the scan listed its folder and did not find it there."""
    return key not in listing.files and not listing.may_have(key)
